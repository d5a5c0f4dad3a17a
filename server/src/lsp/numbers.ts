// Numbers as listings and messages show them: six significant digits, trailing zeros dropped,
// exponent notation outside [1e-3, 1e6). Its own function rather than the CLI's `fmt`, which
// turns 123450 into "12345" (it trims zeros from integers too); and this one is faster, which
// matters for a listing of a million numbers.
export function num(v: number): string {
  if (v === 0) return '0';
  if (!Number.isFinite(v)) return Number.isNaN(v) ? '-' : String(v);
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e6) return v.toExponential(2);
  const s = v.toPrecision(6);
  if (s.indexOf('.') < 0) return s;
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48) end--;
  if (s.charCodeAt(end - 1) === 46) end--;
  return s.slice(0, end);
}
