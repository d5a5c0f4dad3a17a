// Keras convolution and pooling arithmetic (TensorFlow's rules): output sizes and the zero
// padding 'same' puts before each axis. A size of null is unknown (a None in the config).

export type Dim = number | null;

/** A config value that is an int or a list of ints, as `rank` numbers. */
export function tuple(v: unknown, rank: number, fallback: number): number[] {
  if (typeof v === 'number') return Array(rank).fill(v);
  if (Array.isArray(v) && v.length === rank && v.every((x) => typeof x === 'number')) return v as number[];
  return Array(rank).fill(fallback);
}

export function convOutput(n: Dim, k: number, stride: number, dilation: number, padding: string): Dim {
  if (n === null) return null;
  if (padding === 'same' || padding === 'causal') return Math.ceil(n / stride);
  const out = Math.floor((n - (k - 1) * dilation - 1) / stride) + 1;
  return out > 0 ? out : null;
}

/** Zero padding before the axis (TensorFlow puts the odd extra one after). */
export function padBefore(n: Dim, k: number, stride: number, dilation: number, padding: string): number | undefined {
  if (padding === 'valid') return 0;
  if (padding === 'causal') return (k - 1) * dilation;
  if (n === null) return stride === 1 ? Math.floor(((k - 1) * dilation) / 2) : undefined;
  const total = Math.max((Math.ceil(n / stride) - 1) * stride + (k - 1) * dilation + 1 - n, 0);
  return Math.floor(total / 2);
}

export function padAfter(n: Dim, k: number, stride: number, dilation: number, padding: string): number | undefined {
  const before = padBefore(n, k, stride, dilation, padding);
  if (before === undefined || n === null) return padding === 'valid' ? 0 : undefined;
  if (padding === 'valid') return 0;
  if (padding === 'causal') return 0;
  const total = Math.max((Math.ceil(n / stride) - 1) * stride + (k - 1) * dilation + 1 - n, 0);
  return total - before;
}

/** Output size of a transposed convolution without output_padding. */
export function transposedOutput(n: Dim, k: number, stride: number, padding: string): Dim {
  if (n === null) return null;
  return padding === 'same' ? n * stride : n * stride + Math.max(k - stride, 0);
}

export function poolOutput(n: Dim, k: number, stride: number, padding: string): Dim {
  if (n === null) return null;
  if (padding === 'same') return Math.ceil(n / stride);
  const out = Math.floor((n - k) / stride) + 1;
  return out > 0 ? out : null;
}

export function known(dims: readonly Dim[]): dims is number[] {
  return dims.every((d) => d !== null);
}
