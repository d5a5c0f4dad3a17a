// The write-back kernel: rows [r0, r1) of a row-major float matrix, each element times its
// row's and its column's factor (one thread's share of a scaling).
export function scaleRows(src: Float32Array | Float64Array, dst: Float32Array | Float64Array, base: number, sa: number, nC: number, r0: number, r1: number, ft: Float64Array, fs: Float64Array): void {
  for (let a = r0; a < r1; a++) {
    const fa = ft[a];
    const off = base + a * sa;
    for (let b = 0; b < nC; b++) dst[off + b] = src[off + b] * fa * fs[b];
  }
}
