// Phase 2: what each layer is to the builder, from its class and config alone. Layers the
// builder cannot look into are classified opaque here; the translators may still find a layer
// unsupported once they see its weights and inputs.
import type { KerasLayer } from '../config';

export type LayerKind =
  | { op: 'input' }
  | { op: 'opaque'; reason: string }
  | { op: 'dense' }
  | { op: 'conv'; nd: number; transposed: boolean }
  | { op: 'depthwise'; nd: number }
  | { op: 'separable'; nd: number }
  | { op: 'batchnorm' }
  | { op: 'activation' }
  | { op: 'pool'; pool: 'max' | 'avg'; nd: number; global: boolean }
  | { op: 'zeroPad'; nd: number }
  | { op: 'upsample'; nd: number }
  | { op: 'flatten' }
  | { op: 'reshape' }
  | { op: 'alias' }
  | { op: 'add' }
  | { op: 'concat' };

export interface ClassifiedLayer {
  layer: KerasLayer;
  kind: LayerKind;
}

/** Kinds that read exactly one tensor (reading more is a malformed config, not an unsupported layer). */
export const SINGLE_INPUT: ReadonlySet<LayerKind['op']> = new Set([
  'dense', 'conv', 'depthwise', 'separable', 'batchnorm', 'activation', 'pool', 'zeroPad', 'upsample', 'flatten', 'reshape', 'alias',
] as const);

const ALIASES = new Set([
  'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout',
  'ActivityRegularization', 'Identity',
]);
const ACTIVATION_LAYERS = new Set(['Activation', 'ReLU', 'LeakyReLU', 'PReLU', 'ELU', 'Softmax', 'ThresholdedReLU']);
const CONV = /^Conv(?:olution)?([123])D$/;
const CONV_T = /^Conv(?:olution)?([123])DTranspose$/;
const DEPTHWISE = /^DepthwiseConv([12])D$/;
const SEPARABLE = /^SeparableConv(?:olution)?([12])D$/;
const POOL = /^(Max|Average|Avg)Pool(?:ing)?([123])D$/;
const GLOBAL_POOL = /^Global(Max|Average|Avg)Pool(?:ing)?([123])D$/;
const ZERO_PAD = /^ZeroPadding([123])D$/;
const UPSAMPLE = /^UpSampling([123])D$/;

export function classifyLayers(order: readonly KerasLayer[]): ClassifiedLayer[] {
  return order.map((layer) => ({ layer, kind: classifyLayer(layer) }));
}

export function classifyLayer(layer: KerasLayer): LayerKind {
  const cls = layer.className;
  if (cls === 'InputLayer') return { op: 'input' };
  if (layer.calls.length !== 1) {
    return { op: 'opaque', reason: layer.calls.length === 0 ? 'it is never called' : `it is applied ${layer.calls.length} times (shared weights)` };
  }
  if (layer.config.data_format === 'channels_first') return { op: 'opaque', reason: 'data_format channels_first is not supported' };
  let m: RegExpMatchArray | null;
  if (cls === 'Dense') return { op: 'dense' };
  if ((m = cls.match(CONV))) return { op: 'conv', nd: Number(m[1]), transposed: false };
  if ((m = cls.match(CONV_T))) return { op: 'conv', nd: Number(m[1]), transposed: true };
  if ((m = cls.match(DEPTHWISE))) return { op: 'depthwise', nd: Number(m[1]) };
  if ((m = cls.match(SEPARABLE))) return { op: 'separable', nd: Number(m[1]) };
  if (cls === 'BatchNormalization') return { op: 'batchnorm' };
  if (ACTIVATION_LAYERS.has(cls)) return { op: 'activation' };
  if ((m = cls.match(POOL))) return { op: 'pool', pool: m[1] === 'Max' ? 'max' : 'avg', nd: Number(m[2]), global: false };
  if ((m = cls.match(GLOBAL_POOL))) return { op: 'pool', pool: m[1] === 'Max' ? 'max' : 'avg', nd: Number(m[2]), global: true };
  if ((m = cls.match(ZERO_PAD))) return { op: 'zeroPad', nd: Number(m[1]) };
  if ((m = cls.match(UPSAMPLE))) return { op: 'upsample', nd: Number(m[1]) };
  if (cls === 'Flatten') return { op: 'flatten' };
  if (cls === 'Reshape') return { op: 'reshape' };
  if (ALIASES.has(cls)) return { op: 'alias' };
  if (cls === 'Add') return { op: 'add' };
  if (cls === 'Concatenate') return { op: 'concat' };
  if (cls === 'Functional' || cls === 'Sequential' || cls === 'Model') return { op: 'opaque', reason: 'nested models are not looked into' };
  return { op: 'opaque', reason: `${cls} layers are not supported` };
}
