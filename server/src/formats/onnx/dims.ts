// Tensor dimensions that may be symbolic (a dynamic batch) as products: coef · sym1 · sym2 …
// Flatten multiplies dims and a Reshape's -1 divides them; keeping symbols lets the builder see
// that Reshape(x, [Shape(x)[0], -1]) keeps the batch axis apart without knowing the batch size.

export interface Dim {
  coef: number;
  /** Sorted symbol names; empty for a plain number. */
  syms: readonly string[];
}

export const num = (n: number): Dim => ({ coef: n, syms: [] });
export const sym = (name: string): Dim => ({ coef: 1, syms: [name] });

export function isNumber(d: Dim | undefined): d is Dim {
  return d !== undefined && d.syms.length === 0;
}

export function dimEquals(a: Dim | undefined, b: Dim | undefined): boolean {
  return a !== undefined && b !== undefined && a.coef === b.coef && a.syms.length === b.syms.length && a.syms.every((s, i) => s === b.syms[i]);
}

export function dimMul(a: Dim, b: Dim): Dim {
  return { coef: a.coef * b.coef, syms: [...a.syms, ...b.syms].sort() };
}

export function dimProduct(ds: readonly Dim[]): Dim {
  return ds.reduce(dimMul, num(1));
}

/** a / b when it is exact (symbols cancel, coefficient divides); undefined otherwise. */
export function dimDiv(a: Dim, b: Dim): Dim | undefined {
  if (b.coef === 0 || a.coef % b.coef !== 0) return undefined;
  const rest = [...a.syms];
  for (const s of b.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return { coef: a.coef / b.coef, syms: rest };
}

export function dimText(d: Dim | undefined): string {
  if (!d) return '?';
  if (d.syms.length === 0) return String(d.coef);
  return [...(d.coef === 1 ? [] : [String(d.coef)]), ...d.syms].join('·');
}

export function shapeText(ds: readonly (Dim | undefined)[] | undefined): string {
  return ds ? `[${ds.map(dimText).join(', ')}]` : '[?]';
}
