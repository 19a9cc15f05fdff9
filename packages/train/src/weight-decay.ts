// Which parameters get L2 weight decay (spec §5): every weight of the backbone, the CosFace head
// and the age estimator except batch-norm parameters and biases — PReLU slopes and the CosFace
// matrix included; nothing of the DA discriminator, the generator or the discriminator.

/** Networks (checkpoint prefixes) whose weights are decayed in the FR step. */
export const DECAYED_NETWORKS: ReadonlySet<string> = new Set(['backbone', 'head', 'estimation']);

/**
 * @param network checkpoint prefix of the parameter's network (`backbone`, `head`, ...)
 * @param name the parameter's dotted name inside its network (`block1.0.res_layer.1.weight`)
 * @param ownerIsBatchNorm whether the module that owns the parameter is a batch norm
 */
export function decaysWeight(network: string, name: string, ownerIsBatchNorm: boolean): boolean {
  if (!DECAYED_NETWORKS.has(network) || ownerIsBatchNorm) return false;
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  return leaf !== 'bias';
}
