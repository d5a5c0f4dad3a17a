// One floating tooltip for the whole page (heatmap cells), positioned from script because the
// policy forbids inline style attributes, not CSSOM writes.

export class Tooltip {
  readonly element: HTMLDivElement;

  constructor() {
    this.element = document.createElement('div');
    this.element.className = 'tooltip';
    this.element.setAttribute('role', 'tooltip');
    this.element.hidden = true;
    document.body.append(this.element);
  }

  show(clientX: number, clientY: number, rows: [string, string][]): void {
    const el = this.element;
    el.replaceChildren();
    for (const [k, v] of rows) {
      const row = document.createElement('div');
      row.className = 'tooltip-row';
      const key = document.createElement('span');
      key.className = 'key';
      key.textContent = k;
      const value = document.createElement('span');
      value.className = 'value';
      value.dataset['key'] = k;
      value.textContent = v;
      row.append(key, value);
      el.append(row);
    }
    el.hidden = false;
    // Keep it inside the viewport: flip left/up near the right/bottom edges.
    const w = el.offsetWidth;
    const h = el.offsetHeight;
    const x = clientX + 14 + w > window.innerWidth ? clientX - 10 - w : clientX + 14;
    const y = clientY + 14 + h > window.innerHeight ? clientY - 10 - h : clientY + 14;
    el.style.left = `${Math.max(0, x)}px`;
    el.style.top = `${Math.max(0, y)}px`;
  }

  hide(): void {
    this.element.hidden = true;
  }
}

/** A figure for a tooltip: `digits` significant digits, exponent form when very small or large. */
export function formatValue(v: number, digits: number): string {
  if (v !== v) return 'NaN';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a < 1e-3 || a >= 1e6 ? v.toExponential(digits - 1) : String(+v.toPrecision(digits));
}
