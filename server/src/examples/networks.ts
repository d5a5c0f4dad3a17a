// Example networks built in code: the demo, the benchmarks and the property tests run on them.
import type { DType } from '../tensor/dtype';
import { makeTensor, type Tensor } from '../tensor/tensor';
import { relu, identity, type Activation } from '../engine/activation';
import type { Connection, Network, UnitGroup } from '../engine/network';
import { normal, rng } from '../engine/random';

export interface MlpSpec {
  name?: string;
  /** Layer widths, input first, output last. */
  sizes: readonly number[];
  /** Activation of hidden layer l (0-based), or one for all. */
  activation?: Activation | ((layer: number) => Activation);
  bias?: boolean;
  dtype?: DType;
  seed?: number;
  /** Standard deviation of the N(0, σ²) weights and biases (default 0.1). */
  std?: number;
}

function sampler(seed: number, std: number): () => number {
  const n = normal(rng(seed));
  return () => std * n();
}

export function randomTensor(name: string, dtype: DType, shape: number[], draw: () => number): Tensor {
  const t = makeTensor(name, dtype, shape);
  const n = t.data.length;
  if (dtype === 'float32' || dtype === 'float64') {
    for (let i = 0; i < n; i++) t.data[i] = draw();
    return t;
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = draw();
  return makeTensor(name, dtype, shape, values);
}

/** A dense feed-forward net with PyTorch-layout weights fc{l}.weight [out, in] and fc{l}.bias. */
export function mlp(spec: MlpSpec): Network {
  const { sizes } = spec;
  const dtype = spec.dtype ?? 'float64';
  const draw = sampler(spec.seed ?? 1, spec.std ?? 0.1);
  const act = (l: number): Activation =>
    typeof spec.activation === 'function' ? spec.activation(l) : (spec.activation ?? relu());
  const groups: UnitGroup[] = sizes.map((size, l) => {
    if (l === 0) return { name: 'input', size, role: 'input' };
    if (l === sizes.length - 1) return { name: 'output', size, role: 'output' };
    return { name: `h${l}`, size, role: 'hidden', activation: act(l - 1), activationSource: 'example' };
  });
  const tensors: Tensor[] = [];
  const connections: Connection[] = [];
  for (let l = 1; l < sizes.length; l++) {
    const w = `fc${l}.weight`;
    tensors.push(randomTensor(w, dtype, [sizes[l], sizes[l - 1]], draw));
    connections.push({ tensor: w, kind: 'dense', from: groups[l - 1].name, to: groups[l].name, source: { axis: 1 }, target: { axis: 0 } });
    if (spec.bias ?? true) {
      const b = `fc${l}.bias`;
      tensors.push(randomTensor(b, dtype, [sizes[l]], draw));
      connections.push({ tensor: b, kind: 'bias', to: groups[l].name, target: { axis: 0 } });
    }
  }
  return { name: spec.name ?? `mlp ${sizes.join('-')}`, groups, tensors, connections };
}

/** The paper's autoencoder 784-200-100-50-100-200-784, ReLU, N(0, 0.1²) weights and biases. */
export function paperAutoencoder(seed = 1, dtype: DType = 'float64'): Network {
  return mlp({ name: 'autoencoder 784-200-100-50-100-200-784', sizes: [784, 200, 100, 50, 100, 200, 784], seed, dtype });
}

export interface ConvSpec {
  seed?: number;
  channels?: readonly number[];
  size?: number;
  /** Groups of the second conv (depthwise when equal to its channels). */
  groups?: number;
  activation?: Activation;
  dtype?: DType;
  /** An inference BatchNorm after the first conv (its mean and β scale with each channel). */
  batchnorm?: boolean;
}

/** Conv(3×3, pad 1) → [BN] → act → grouped Conv(3×3, stride 2) → act → flatten → Dense → act → Dense. */
export function convNet(spec: ConvSpec = {}): Network {
  const [c0, c1, c2] = spec.channels ?? [2, 4, 4];
  const H = spec.size ?? 6;
  const H2 = Math.floor((H + 2 - 3) / 2) + 1;
  const draw = sampler(spec.seed ?? 1, 0.3);
  const dtype = spec.dtype ?? 'float64';
  const act = spec.activation ?? relu();
  const G = spec.groups ?? 1;
  const tensors = [
    randomTensor('conv1.weight', dtype, [c1, c0, 3, 3], draw),
    randomTensor('conv1.bias', dtype, [c1], draw),
    randomTensor('conv2.weight', dtype, [c2, c1 / G, 3, 3], draw),
    randomTensor('conv2.bias', dtype, [c2], draw),
    randomTensor('fc.weight', dtype, [8, c2 * H2 * H2], draw),
    randomTensor('fc.bias', dtype, [8], draw),
    randomTensor('head.weight', dtype, [3, 8], draw),
  ];
  const bn = spec.batchnorm
    ? {
        tensors: [
          randomTensor('bn1.weight', dtype, [c1], () => 1 + Math.abs(draw())),
          randomTensor('bn1.bias', dtype, [c1], draw),
          randomTensor('bn1.running_mean', dtype, [c1], draw),
          randomTensor('bn1.running_var', dtype, [c1], () => 0.5 + Math.abs(draw())),
        ],
        connections: [
          { tensor: 'bn1.bias', kind: 'bias' as const, to: 'conv1', target: { axis: 0 } },
          { tensor: 'bn1.running_mean', kind: 'bias' as const, to: 'conv1', target: { axis: 0 }, regularized: false },
        ],
      }
    : { tensors: [], connections: [] };
  return {
    name: spec.batchnorm ? 'conv net with batchnorm' : 'conv net',
    groups: [
      { name: 'image', size: c0, role: 'input', spatial: [H, H] },
      {
        name: 'conv1',
        size: c1,
        role: 'hidden',
        activation: act,
        spatial: [H, H],
        ...(spec.batchnorm ? { batchnorm: { mean: 'bn1.running_mean', variance: 'bn1.running_var', gamma: 'bn1.weight', beta: 'bn1.bias', eps: 1e-5 } } : {}),
      },
      { name: 'conv2', size: c2, role: 'hidden', activation: act, spatial: [H2, H2] },
      { name: 'fc', size: 8, role: 'hidden', activation: act },
      { name: 'head', size: 3, role: 'output' },
    ],
    tensors: [...tensors, ...bn.tensors],
    connections: [
      ...bn.connections,
      { tensor: 'conv1.weight', kind: 'conv', from: 'image', to: 'conv1', target: { axis: 0 }, source: { axis: 1 }, geometry: { pad: [1, 1] } },
      { tensor: 'conv1.bias', kind: 'bias', to: 'conv1', target: { axis: 0 } },
      { tensor: 'conv2.weight', kind: 'conv', from: 'conv1', to: 'conv2', target: { axis: 0 }, source: { axis: 1 }, groups: G, geometry: { stride: [2, 2], pad: [1, 1] } },
      { tensor: 'conv2.bias', kind: 'bias', to: 'conv2', target: { axis: 0 } },
      // Flatten of C×H×W: H·W consecutive inputs per channel.
      { tensor: 'fc.weight', kind: 'dense', from: 'conv2', to: 'fc', target: { axis: 0 }, source: { axis: 1, inner: H2 * H2 } },
      { tensor: 'fc.bias', kind: 'bias', to: 'fc', target: { axis: 0 } },
      { tensor: 'head.weight', kind: 'dense', from: 'fc', to: 'head', target: { axis: 0 }, source: { axis: 1 } },
    ],
  };
}

export interface RnnSpec {
  inputs?: number;
  hidden: number;
  outputs?: number;
  seed?: number;
  std?: number;
  dtype?: DType;
  activation?: Activation;
}

/** h_t = act(W_ih x_t + W_hh h_{t−1} + b), y_t = W_out h_t: a recurrent net (cycles, self-loops). */
export function rnn(spec: RnnSpec): Network {
  const nin = spec.inputs ?? 4;
  const nout = spec.outputs ?? 3;
  const H = spec.hidden;
  const dtype = spec.dtype ?? 'float64';
  const draw = sampler(spec.seed ?? 1, spec.std ?? 1 / Math.sqrt(H));
  return {
    name: `relu rnn ${nin}-${H}-${nout}`,
    groups: [
      { name: 'x', size: nin, role: 'input' },
      { name: 'h', size: H, role: 'hidden', activation: spec.activation ?? relu() },
      { name: 'y', size: nout, role: 'output' },
    ],
    tensors: [
      randomTensor('weight_ih', dtype, [H, nin], draw),
      randomTensor('weight_hh', dtype, [H, H], draw),
      randomTensor('bias_h', dtype, [H], draw),
      randomTensor('out.weight', dtype, [nout, H], draw),
    ],
    connections: [
      { tensor: 'weight_ih', kind: 'dense', from: 'x', to: 'h', target: { axis: 0 }, source: { axis: 1 } },
      { tensor: 'weight_hh', kind: 'dense', from: 'h', to: 'h', target: { axis: 0 }, source: { axis: 1 }, delay: 1 },
      { tensor: 'bias_h', kind: 'bias', to: 'h', target: { axis: 0 } },
      { tensor: 'out.weight', kind: 'dense', from: 'h', to: 'y', target: { axis: 0 }, source: { axis: 1 } },
    ],
  };
}

/**
 * A residual block and a long skip: x = relu(W0·in + b0); y = x + W2·relu(W1·x + b1) + b2 (the
 * residual add ties x and y: they share one scale); out = W3·y + S·h (a long skip from h).
 */
export function residualNet(seed = 1, width = 6, dtype: DType = 'float64'): Network {
  const draw = sampler(seed, 0.4);
  return {
    name: 'residual block with a long skip',
    groups: [
      { name: 'in', size: 5, role: 'input' },
      { name: 'x', size: width, role: 'hidden', activation: relu() },
      { name: 'h', size: 7, role: 'hidden', activation: relu() },
      { name: 'y', size: width, role: 'hidden', activation: identity() },
      { name: 'out', size: 3, role: 'output' },
    ],
    tensors: [
      randomTensor('w0', dtype, [width, 5], draw),
      randomTensor('b0', dtype, [width], draw),
      randomTensor('w1', dtype, [7, width], draw),
      randomTensor('b1', dtype, [7], draw),
      randomTensor('w2', dtype, [width, 7], draw),
      randomTensor('b2', dtype, [width], draw),
      randomTensor('w3', dtype, [3, width], draw),
      randomTensor('skip.h', dtype, [3, 7], draw),
    ],
    connections: [
      { tensor: 'w0', kind: 'dense', from: 'in', to: 'x', target: { axis: 0 }, source: { axis: 1 } },
      { tensor: 'b0', kind: 'bias', to: 'x', target: { axis: 0 } },
      { tensor: 'w1', kind: 'dense', from: 'x', to: 'h', target: { axis: 0 }, source: { axis: 1 } },
      { tensor: 'b1', kind: 'bias', to: 'h', target: { axis: 0 } },
      { tensor: 'w2', kind: 'dense', from: 'h', to: 'y', target: { axis: 0 }, source: { axis: 1 } },
      { tensor: 'b2', kind: 'bias', to: 'y', target: { axis: 0 } },
      { kind: 'skip', from: 'x', to: 'y', target: { axis: 0 } },
      { tensor: 'w3', kind: 'dense', from: 'y', to: 'out', target: { axis: 0 }, source: { axis: 1 } },
      { tensor: 'skip.h', kind: 'dense', from: 'h', to: 'out', target: { axis: 0 }, source: { axis: 1 } },
    ],
  };
}
