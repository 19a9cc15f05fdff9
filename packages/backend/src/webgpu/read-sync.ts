/**
 * tfjs-backend-webgpu reads a device tensor synchronously (`dataSync`, `arraySync`) by drawing it
 * onto an OffscreenCanvas, which Node does not have: the call fails with
 * `ReferenceError: OffscreenCanvas is not defined` after a warning. This makes it one line saying
 * what to do instead. Values still on the host (not yet used by a kernel) read as before.
 */
export function explainNoSyncReadBack(proto: object): void {
  const p = proto as {
    readSync(dataId: object): unknown;
    tensorMap: { get(dataId: object): { values?: unknown; dtype: string } | undefined };
  };
  const own = p.readSync;
  if ((own as { explained?: boolean }).explained) return;
  const readSync = function (this: typeof p, dataId: object): unknown {
    const data = this.tensorMap.get(dataId);
    const onDevice =
      data != null && data.values == null && data.dtype !== 'string' && data.dtype !== 'complex64';
    if (onDevice && typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined')
      throw new Error(
        'webgpu backend: no synchronous read-back in Node (dataSync/arraySync/bufferSync); use `await tensor.data()` or `await tensor.array()`',
      );
    return own.call(this, dataId);
  };
  Object.assign(readSync, { explained: true });
  p.readSync = readSync;
}
