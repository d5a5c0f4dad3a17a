// Tied balancing of a bias-free layer chain in closed form. With one factor M_l per weight
// matrix (Π M_l = 1), minimising Σ M_l^p·‖A_l‖_p^p makes every term equal to
// G = (Π_k ‖A_k‖_p^p)^(1/N); for L2, M_l = (Π_k ‖A_k‖)^(1/N) / ‖A_l‖.
// The paper's Appendix B (eq. 12.7) prints the square of that; it is kept only to test that
// it is not optimal.

/** The optimal matrix factors M_l from the per-matrix costs ‖A_l‖_p^p. */
export function tiedMatrixFactors(costs: readonly number[], p: number): number[] {
  const N = costs.length;
  const logG = costs.reduce((s, c) => s + Math.log(c), 0) / N;
  return costs.map((c) => Math.exp((logG - Math.log(c)) / p));
}

/** Eq. 12.7 as printed: M_l = Π_k ‖A_k‖^(2/N) / ‖A_l‖² (Frobenius norms), for L2. */
export function paperEq127Factors(frobeniusNorms: readonly number[]): number[] {
  const N = frobeniusNorms.length;
  const logProd = frobeniusNorms.reduce((s, n) => s + Math.log(n), 0);
  return frobeniusNorms.map((n) => Math.exp((2 / N) * logProd - 2 * Math.log(n)));
}

/** Layer factors Λ_l (hidden layers 1..N−1) from matrix factors: Λ_l = Π_{k≤l} M_k. */
export function layerFactorsFromMatrixFactors(m: readonly number[]): number[] {
  const out: number[] = [];
  let acc = 1;
  for (let l = 0; l < m.length - 1; l++) {
    acc *= m[l];
    out.push(acc);
  }
  return out;
}
