// Per-layer time series under a run's heatmap: total deficit, R and ‖W‖_F, one panel each,
// log y. Lines go onto a base canvas only when data, size or theme change — and an append
// draws only the new steps, since the axes are padded (whole decades, step range rounded up)
// so that growing data rarely moves them. Scrubbing redraws just a cursor on an overlay canvas.

import { BALANCE_CONVERGED, BALANCE_DELTA_R, BALANCE_ITERATIONS, BALANCE_MAX_DEFICIT, BALANCE_R_AFTER, BALANCE_R_BEFORE } from '../../server/src/contract/monitor';
import { balanceColor, layerColor, rgbCss, type Palette } from './colorScale';
import { R_VALUE, TOTAL_DEFICIT, WEIGHT_NORM, type RunSeries } from './seriesData';
import { canvasFont } from './theme';
import { formatValue, type Tooltip } from './tooltip';

/** Axes shared by every run's panels, so runs compare at a glance. */
export interface SeriesDomain {
  x0: number;
  x1: number;
  /** Per kind: log10 of the axis ends, whole decades; NaN when no run has a positive value. */
  y: [number, number][];
}

/** A "nice" end for the step axis at or above `v` (1, 2 or 5 × 10^k). */
function niceCeil(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** The union of the runs' step and value ranges, padded so that appends seldom change it. */
export function sharedDomain(all: readonly RunSeries[]): SeriesDomain {
  let x0 = Infinity;
  let x1 = -Infinity;
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (const s of all) {
    if (s.length === 0) continue;
    x0 = Math.min(x0, s.step(0));
    x1 = Math.max(x1, s.step(s.length - 1));
    s.positiveRange.forEach(([a, b], k) => {
      lo[k] = Math.min(lo[k]!, a);
      hi[k] = Math.max(hi[k]!, b);
    });
  }
  if (!(x0 <= x1)) {
    x0 = 0;
    x1 = 1;
  }
  const y = lo.map((a, k): [number, number] => {
    if (!(a <= hi[k]!)) return [NaN, NaN];
    const d0 = Math.floor(Math.log10(a));
    const d1 = Math.max(d0 + 1, Math.ceil(Math.log10(hi[k]!)));
    return [d0, d1];
  });
  return { x0, x1: x0 + niceCeil(Math.max(x1 - x0, 1)), y };
}

export function sameDomain(a: SeriesDomain | null, b: SeriesDomain): boolean {
  const same = (u: number, v: number) => u === v || (u !== u && v !== v);
  return !!a && a.x0 === b.x0 && a.x1 === b.x1 && a.y.every((r, k) => same(r[0], b.y[k]![0]) && same(r[1], b.y[k]![1]));
}

interface PanelSpec {
  kind: number;
  title: string;
}

const PANELS: PanelSpec[] = [
  { kind: TOTAL_DEFICIT, title: 'Total deficit Σ|IN − OUT|' },
  { kind: R_VALUE, title: 'R' },
  { kind: WEIGHT_NORM, title: '‖W‖_F' },
];

const PANEL_HEIGHT = 84;
const PAD = { left: 46, right: 8, top: 6, bottom: 16 };
/** A balance tick: a solid mark this tall at the top of the plot, over a faint full-height line. */
export const BALANCE_TICK_HEIGHT = 6;
/** Hover distance (CSS px) within which a balance tick shows its tooltip. */
const BALANCE_HOVER_PX = 4;

/** Tooltip rows of balance event `e`. */
export function balanceRows(series: RunSeries, e: number): [string, string][] {
  const v = (k: number) => series.balanceValue(e, k);
  const rows: [string, string][] = [
    ['balanced at step', String(series.step(series.balanceIndex(e)))],
    ['ΔR', formatValue(v(BALANCE_DELTA_R), 4)],
  ];
  if (v(BALANCE_R_BEFORE) === v(BALANCE_R_BEFORE) || v(BALANCE_R_AFTER) === v(BALANCE_R_AFTER)) {
    rows.push(['R', `${formatValue(v(BALANCE_R_BEFORE), 5)} → ${formatValue(v(BALANCE_R_AFTER), 5)}`]);
  }
  if (v(BALANCE_ITERATIONS) === v(BALANCE_ITERATIONS)) rows.push(['sweeps', String(v(BALANCE_ITERATIONS))]);
  if (v(BALANCE_MAX_DEFICIT) === v(BALANCE_MAX_DEFICIT)) rows.push(['max deficit after', formatValue(v(BALANCE_MAX_DEFICIT), 3)]);
  const c = v(BALANCE_CONVERGED);
  if (c === c) rows.push(['converged', c ? 'yes' : 'no']);
  return rows;
}

interface Panel {
  spec: PanelSpec;
  element: HTMLDivElement;
  base: HTMLCanvasElement;
  overlay: HTMLCanvasElement;
}

function formatDecade(d: number): string {
  return d >= -2 && d <= 3 ? String(10 ** d) : `1e${d}`;
}

function formatStep(v: number): string {
  return v >= 1e5 ? v.toExponential(1).replace('e+', 'e') : String(v);
}

export class SeriesView {
  readonly element: HTMLDivElement;
  private readonly panels: Panel[];
  private cssWidth = 600;
  private cursorIndex = -1;
  private palette: Palette | null = null;
  private domain: SeriesDomain | null = null;
  /** Steps already on the base canvases; an append draws from here. */
  private drawn = 0;
  /** Balance events already ticked on the base canvases. */
  private ticked = 0;
  private byIndex = false;
  private series: RunSeries | null = null;

  constructor(private readonly tooltip?: Tooltip) {
    this.element = document.createElement('div');
    this.element.className = 'series';
    this.panels = PANELS.map((spec) => {
      const element = document.createElement('div');
      element.className = 'series-panel';
      element.dataset['kind'] = String(spec.kind);
      const title = document.createElement('div');
      title.className = 'series-title';
      title.textContent = spec.title;
      const stack = document.createElement('div');
      stack.className = 'series-stack';
      const base = document.createElement('canvas');
      base.className = 'series-base';
      const overlay = document.createElement('canvas');
      overlay.className = 'series-overlay';
      stack.append(base, overlay);
      element.append(title, stack);
      this.element.append(element);
      base.addEventListener('mousemove', (e) => this.hover(base, e));
      base.addEventListener('mouseleave', () => this.tooltip?.hide());
      return { spec, element, base, overlay };
    });
  }

  /** The balance event whose tick is nearest `cssX` (within BALANCE_HOVER_PX), or -1. */
  balanceEventAt(cssX: number): number {
    const s = this.series;
    if (!s || !this.domain || s.balanceCount === 0) return -1;
    // Ticks are in index order, hence in x order (steps are monotone, or x is the index).
    let lo = 0;
    let hi = s.balanceCount - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.x(s, s.balanceIndex(mid)) < cssX) lo = mid + 1;
      else hi = mid;
    }
    let best = -1;
    let dist = BALANCE_HOVER_PX + 0.5;
    for (const e of [lo - 1, lo]) {
      if (e < 0 || e >= s.balanceCount) continue;
      const d = Math.abs(Math.floor(this.x(s, s.balanceIndex(e))) + 0.5 - cssX);
      if (d < dist) {
        dist = d;
        best = e;
      }
    }
    return best;
  }

  private hover(canvas: HTMLCanvasElement, e: MouseEvent): void {
    if (!this.tooltip) return;
    const r = canvas.getBoundingClientRect();
    const y = e.clientY - r.top;
    const ev = y >= PAD.top && y <= PANEL_HEIGHT - PAD.bottom ? this.balanceEventAt(e.clientX - r.left) : -1;
    if (ev < 0 || !this.series) {
      this.tooltip.hide();
      return;
    }
    this.tooltip.show(e.clientX, e.clientY, balanceRows(this.series, ev));
  }

  setWidth(cssWidth: number): boolean {
    const w = Math.max(120, Math.floor(cssWidth));
    if (w === this.cssWidth) return false;
    this.cssWidth = w;
    return true;
  }

  private x(series: RunSeries, i: number): number {
    const plotW = this.cssWidth - PAD.left - PAD.right;
    if (this.byIndex) return PAD.left + (series.length > 1 ? (i / (series.length - 1)) * plotW : plotW / 2);
    const d = this.domain!;
    return PAD.left + ((series.step(i) - d.x0) / (d.x1 - d.x0)) * plotW;
  }

  /** Draws only the steps appended since the last draw; falls back to a full draw when it cannot. */
  extend(series: RunSeries, palette: Palette, domain: SeriesDomain): void {
    if (this.byIndex || this.palette !== palette || !sameDomain(this.domain, domain) || series.length < this.drawn || this.drawn === 0) {
      this.draw(series, palette, domain);
      return;
    }
    if (series.length === this.drawn) return;
    const dpr = window.devicePixelRatio || 1;
    for (const p of this.panels) {
      const ctx = p.base.getContext('2d')!;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      if (p.element.dataset['empty'] && series.positiveRange[p.spec.kind]![0] <= series.positiveRange[p.spec.kind]![1]) {
        this.draw(series, palette, domain);
        return;
      }
      this.drawLines(ctx, p, series, palette, this.drawn - 1);
      this.drawBalanceTicks(ctx, series, palette, this.ticked);
    }
    this.drawn = series.length;
    this.ticked = series.balanceCount;
  }

  /** Redraws every panel from scratch (data reset, size, theme or axes changed). */
  draw(series: RunSeries, palette: Palette, domain: SeriesDomain): void {
    this.palette = palette;
    this.domain = domain;
    this.series = series;
    this.byIndex = !series.isMonotone();
    const dpr = window.devicePixelRatio || 1;
    const font = canvasFont(10);
    const w = Math.round(this.cssWidth * dpr);
    const h = Math.round(PANEL_HEIGHT * dpr);
    for (const p of this.panels) {
      for (const c of [p.base, p.overlay]) {
        if (c.width !== w || c.height !== h) {
          c.width = w;
          c.height = h;
          c.style.width = `${this.cssWidth}px`;
          c.style.height = `${PANEL_HEIGHT}px`;
        }
      }
      const ctx = p.base.getContext('2d')!;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, this.cssWidth, PANEL_HEIGHT);
      ctx.font = font;
      if (this.drawAxes(ctx, p, series, palette)) this.drawLines(ctx, p, series, palette, 0);
      this.drawBalanceTicks(ctx, series, palette, 0);
    }
    this.drawn = series.length;
    this.ticked = series.balanceCount;
    this.element.dataset['balanceTicks'] = String(series.balanceCount);
    const c = this.cursorIndex;
    this.cursorIndex = -1;
    this.drawCursor(c, series);
  }

  /** Frame, ticks, decade grid; false when the panel has nothing to plot. */
  private drawAxes(ctx: CanvasRenderingContext2D, p: Panel, series: RunSeries, palette: Palette): boolean {
    const fg = palette.theme.foreground;
    const top = PAD.top;
    const bottom = PANEL_HEIGHT - PAD.bottom;
    const left = PAD.left;
    const right = this.cssWidth - PAD.right;
    const n = series.length;
    ctx.fillStyle = rgbCss(fg, 0.75);
    ctx.strokeStyle = rgbCss(fg, 0.25);
    ctx.lineWidth = 1;
    ctx.strokeRect(left + 0.5, top + 0.5, right - left - 1, bottom - top - 1);
    ctx.textBaseline = 'top';
    ctx.textAlign = 'left';
    ctx.fillText(this.byIndex ? '0' : formatStep(this.domain!.x0), left, bottom + 3);
    ctx.textAlign = 'right';
    ctx.fillText(this.byIndex ? `#${Math.max(0, n - 1)}` : formatStep(this.domain!.x1), right, bottom + 3);
    const [d0, d1] = this.domain!.y[p.spec.kind]!;
    const own = series.positiveRange[p.spec.kind]!;
    if (d0 !== d0 || !(own[0] <= own[1])) {
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(n ? 'not logged' : 'no steps yet', (left + right) / 2, (top + bottom) / 2);
      p.element.dataset['empty'] = 'true';
      return false;
    }
    delete p.element.dataset['empty'];
    const yOf = (d: number) => bottom - ((d - d0) / (d1 - d0)) * (bottom - top);
    if (d1 - d0 < 10) {
      ctx.strokeStyle = rgbCss(fg, 0.1);
      ctx.beginPath();
      for (let d = d0 + 1; d < d1; d++) {
        const y = Math.round(yOf(d)) + 0.5;
        ctx.moveTo(left, y);
        ctx.lineTo(right, y);
      }
      ctx.stroke();
    }
    ctx.textAlign = 'right';
    ctx.textBaseline = 'top';
    ctx.fillText(formatDecade(d1), left - 4, top);
    ctx.textBaseline = 'bottom';
    ctx.fillText(formatDecade(d0), left - 4, bottom);
    return true;
  }

  /**
   * The layers' lines from step `from` on. Per layer the path has at most two vertices per
   * pixel column (the column's min and max), so stroking costs the width, not the step count.
   */
  private drawLines(ctx: CanvasRenderingContext2D, p: Panel, series: RunSeries, palette: Palette, from: number): void {
    const top = PAD.top;
    const bottom = PANEL_HEIGHT - PAD.bottom;
    const [d0, d1] = this.domain!.y[p.spec.kind]!;
    if (d0 !== d0) return;
    const n = series.length;
    const start = Math.max(0, from);
    const nLayers = series.layers.length;
    const stride = nLayers * 3;
    const logs = series.logValues;
    const cols = new Int32Array(n - start);
    for (let i = start; i < n; i++) cols[i - start] = Math.floor(this.x(series, i));
    const k = (bottom - top) / (d1 - d0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(PAD.left, top, this.cssWidth - PAD.left - PAD.right, bottom - top);
    ctx.clip();
    ctx.lineWidth = 1;
    for (let l = 0; l < nLayers; l++) {
      ctx.strokeStyle = layerColor(l, palette.theme);
      ctx.beginPath();
      let col = -1;
      let min = 0;
      let max = 0;
      let open = false;
      const offset = l * 3 + p.spec.kind;
      for (let i = start; i <= n; i++) {
        const v = i < n ? logs[i * stride + offset]! : NaN;
        const ok = v === v;
        const c = ok ? cols[i - start]! : -2;
        if (c !== col && col >= 0) {
          const x = col + 0.5;
          if (open) ctx.lineTo(x, min);
          else ctx.moveTo(x, min);
          if (max !== min) ctx.lineTo(x, max);
          open = true;
        }
        if (!ok) {
          // A gap in the log (or a value ≤ 0, which a log axis cannot show: its log is NaN) breaks the line.
          col = -1;
          open = false;
          continue;
        }
        const y = bottom - (v - d0) * k;
        if (c !== col) {
          col = c;
          min = max = y;
        } else if (y < min) min = y;
        else if (y > max) max = y;
      }
      ctx.stroke();
    }
    ctx.restore();
  }

  /**
   * A tick at each balance event from event `from` on: a faint line across the plot and a solid
   * mark at its top (pixel-aligned, in the theme's balance colour, drawn over the lines).
   */
  private drawBalanceTicks(ctx: CanvasRenderingContext2D, series: RunSeries, palette: Palette, from: number): void {
    if (series.balanceCount <= from) return;
    const color = balanceColor(palette.theme);
    const top = PAD.top + 1;
    const bottom = PANEL_HEIGHT - PAD.bottom - 1;
    ctx.save();
    ctx.fillStyle = rgbCss(color, 0.28);
    for (let e = from; e < series.balanceCount; e++) ctx.fillRect(Math.floor(this.x(series, series.balanceIndex(e))), top + BALANCE_TICK_HEIGHT, 1, bottom - top - BALANCE_TICK_HEIGHT);
    ctx.fillStyle = rgbCss(color);
    for (let e = from; e < series.balanceCount; e++) ctx.fillRect(Math.floor(this.x(series, series.balanceIndex(e))) - 1, top, 3, BALANCE_TICK_HEIGHT);
    ctx.restore();
    this.element.dataset['balanceTicks'] = String(series.balanceCount);
  }

  /** Moves the step cursor; cheap enough to call on every scrub event. */
  drawCursor(index: number, series: RunSeries | null): void {
    if (index === this.cursorIndex || !this.palette || !this.domain) return;
    this.cursorIndex = index;
    const dpr = window.devicePixelRatio || 1;
    const color = rgbCss(this.palette.theme.accent);
    const valid = !!series && index >= 0 && index < series.length;
    const x = valid ? Math.round(this.x(series, index) * dpr) : 0;
    for (const p of this.panels) {
      const ctx = p.overlay.getContext('2d')!;
      ctx.clearRect(0, 0, p.overlay.width, p.overlay.height);
      if (!valid) continue;
      ctx.fillStyle = color;
      ctx.fillRect(x - Math.max(1, Math.round(dpr / 2)), Math.round(PAD.top * dpr), Math.max(1, Math.round(dpr * 1.5)), Math.round((PANEL_HEIGHT - PAD.top - PAD.bottom) * dpr));
    }
    this.element.dataset['cursor'] = String(index);
  }
}
