// The pickle reader lives in @mtlface/pickle (shared with @mtlface/data); re-exported for .pth import.
export {
  unpickle,
  PickleError,
  PickleGlobal,
  PickleObject,
  type PickleValue,
  type UnpickleOptions,
} from '@mtlface/pickle';
