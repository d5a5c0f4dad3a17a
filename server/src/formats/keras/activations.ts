// Keras activations (a layer's `activation` field, or an activation layer) as engine
// activations. Only BiLU functions are positively homogeneous; everything else keeps its units
// visible, under its Keras name so the reason reads naturally.
import { identity, leakyRelu, other, prelu, relu, type Activation } from '../../engine/activation';

/** Names the engine's forward pass can evaluate (others only decide balanceability). */
const FORWARD_KNOWN = new Set(['tanh', 'sigmoid', 'relu6', 'softplus', 'silu', 'swish']);

export function forwardKnown(a: Activation): boolean {
  return a.kind !== 'other' || FORWARD_KNOWN.has(a.name);
}

/** The function name in an `activation` field: "relu", or Keras 3's serialized {config: "relu"}. */
export function activationName(spec: unknown): string {
  if (spec === undefined || spec === null) return 'linear';
  if (typeof spec === 'string') return spec;
  if (typeof spec === 'object') {
    const o = spec as Record<string, unknown>;
    if (typeof o.config === 'string') return o.config;
    if (o.config && typeof o.config === 'object' && typeof (o.config as Record<string, unknown>).name === 'string') return (o.config as Record<string, string>).name;
    if (typeof o.class_name === 'string') return o.class_name;
  }
  return String(spec);
}

/** An `activation` field (of Dense, Conv*, or an Activation layer). */
export function fieldActivation(spec: unknown): Activation {
  const name = activationName(spec).toLowerCase();
  switch (name) {
    case 'linear':
    case 'identity':
      return identity();
    case 'relu':
      return relu();
    case 'leaky_relu':
      // keras.activations.leaky_relu defaults to a slope of 0.2.
      return leakyRelu(0.2);
    default:
      return other(name);
  }
}

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

/** ReLU(max_value, negative_slope, threshold): homogeneous only without a cap or threshold. */
export function reluLayer(cfg: Record<string, unknown>): Activation {
  const max = cfg.max_value;
  const slope = num(cfg.negative_slope, 0);
  const threshold = num(cfg.threshold, 0);
  const capped = typeof max === 'number' && Number.isFinite(max);
  if (!capped && threshold === 0) return slope === 0 ? relu() : leakyRelu(slope);
  if (capped && max === 6 && slope === 0 && threshold === 0) return other('relu6');
  const parts = [capped ? `max_value=${max}` : '', threshold !== 0 ? `threshold=${threshold}` : '', slope !== 0 ? `negative_slope=${slope}` : ''].filter(Boolean);
  return other(`relu(${parts.join(', ')})`);
}

/** LeakyReLU: Keras 2 calls the slope `alpha`, Keras 3 `negative_slope`; both default to 0.3. */
export function leakyLayer(cfg: Record<string, unknown>): Activation {
  return leakyRelu(num(cfg.negative_slope, num(cfg.alpha, 0.3)));
}

/**
 * PReLU with slopes `alpha` of shape [..., C]: one slope per channel when the slopes do not vary
 * along the other axes (shared_axes), else the units cannot be described per channel.
 */
export function preluLayer(alpha: Float64Array, shape: readonly number[], channels: number): Activation {
  const C = shape.length ? shape[shape.length - 1] : 1;
  if (C !== channels && C !== 1) return other(`prelu (slopes for ${C} channels, the layer has ${channels})`);
  const slopes = Array.from({ length: channels }, (_, c) => alpha[C === 1 ? 0 : c]);
  for (let i = 0; i < alpha.length; i++) {
    if (alpha[i] !== slopes[C === 1 ? 0 : i % C]) return other('prelu (slopes vary within a channel)');
  }
  return prelu(slopes);
}

/** Activation-only layers other than ReLU/LeakyReLU/PReLU. */
export function otherActivationLayer(className: string, cfg: Record<string, unknown>): Activation | undefined {
  switch (className) {
    case 'Activation':
      return fieldActivation(cfg.activation);
    case 'Softmax':
      return other('softmax');
    case 'ELU':
      return other('elu');
    case 'ThresholdedReLU':
      return num(cfg.theta, 1) === 0 ? relu() : other('thresholded_relu');
    default:
      return undefined;
  }
}
