// One run's heatmap: a row band per layer, units along the row, colour = relative deficit on
// the palette's log scale. A frame becomes one W × L image (one pixel per bin and layer, written
// as Uint32 through the packed LUT), one putImageData, one scaled drawImage: no per-cell fills.

import type { MonitorFrame } from '../../server/src/contract/monitor';
import { DEAD_INDEX, deficitIndex, rgbCss, type Palette } from './colorScale';

/** Enough of a frame layer to paint it. */
export interface DeficitRow {
  relativeDeficit: Float32Array;
}

/**
 * Writes layer rows into `out` (width × rows.length pixels). Each layer is stretched over the
 * full width: fewer units than bins repeat, more units than bins pool to the bin's worst unit
 * so a lone out-of-balance unit never disappears between pixels. A bin is dead only when all
 * its units are.
 */
export function fillHeatmapPixels(rows: readonly DeficitRow[], width: number, lut: Uint32Array, out: Uint32Array): void {
  const deadColor = lut[DEAD_INDEX]!;
  for (let l = 0; l < rows.length; l++) {
    const d = rows[l]!.relativeDeficit;
    const n = d.length;
    const base = l * width;
    if (n === 0) {
      out.fill(0, base, base + width);
    } else if (n <= width) {
      for (let b = 0; b < width; b++) out[base + b] = lut[deficitIndex(d[Math.floor((b * n) / width)]!)]!;
    } else {
      let u0 = 0;
      for (let b = 0; b < width; b++) {
        const u1 = Math.floor(((b + 1) * n) / width);
        let worst = -1;
        for (let u = u0; u < u1; u++) {
          const v = d[u]!;
          if (v > worst) worst = v; // NaN compares false: dead units never win
        }
        out[base + b] = worst < 0 ? deadColor : lut[deficitIndex(worst)]!;
        u0 = u1;
      }
    }
  }
}

export interface HeatmapHit {
  layer: number;
  name: string;
  /** The unit shown under the pointer: the worst of the bin when a pixel covers several. */
  unit: number;
  firstUnit: number;
  lastUnit: number;
  relativeDeficit: number;
  in?: number;
  out?: number;
}

const MIN_BAND = 8;
const MAX_BAND = 28;
const TARGET_HEIGHT = 320;

export class HeatmapView {
  readonly element: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private readonly labels: HTMLDivElement;
  private readonly source: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly sourceCtx: CanvasRenderingContext2D;
  private image: ImageData | null = null;
  private pixels: Uint32Array = new Uint32Array(0);
  private frame: MonitorFrame | null = null;
  private cssWidth = 600;
  private bandCss = MAX_BAND;
  private binCount = 0;
  private labelKey = '';
  renders = 0;

  constructor() {
    this.element = document.createElement('div');
    this.element.className = 'heatmap';
    this.labels = document.createElement('div');
    this.labels.className = 'heatmap-labels';
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'heatmap-canvas';
    this.element.append(this.labels, this.canvas);
    this.ctx = this.canvas.getContext('2d', { alpha: false })!;
    this.source = document.createElement('canvas');
    this.sourceCtx = this.source.getContext('2d')!;
  }

  get current(): MonitorFrame | null {
    return this.frame;
  }

  /** CSS width available for the canvas; takes effect at the next render. */
  setWidth(cssWidth: number): boolean {
    const w = Math.max(64, Math.floor(cssWidth));
    if (w === this.cssWidth) return false;
    this.cssWidth = w;
    return true;
  }

  clear(palette: Palette): void {
    this.frame = null;
    this.ctx.fillStyle = rgbCss(palette.theme.background);
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    delete this.canvas.dataset['index'];
    delete this.canvas.dataset['step'];
  }

  render(frame: MonitorFrame, palette: Palette, layerColor: (layer: number) => string): void {
    this.frame = frame;
    const layers = frame.layers;
    const nLayers = Math.max(1, layers.length);
    const dpr = window.devicePixelRatio || 1;
    this.bandCss = Math.max(MIN_BAND, Math.min(MAX_BAND, Math.floor(TARGET_HEIGHT / nLayers)));
    const cw = Math.round(this.cssWidth * dpr);
    const ch = Math.round(nLayers * this.bandCss * dpr);
    if (this.canvas.width !== cw || this.canvas.height !== ch) {
      this.canvas.width = cw;
      this.canvas.height = ch;
      this.canvas.style.width = `${this.cssWidth}px`;
      this.canvas.style.height = `${nLayers * this.bandCss}px`;
    }
    let maxUnits = 1;
    for (const l of layers) maxUnits = Math.max(maxUnits, l.relativeDeficit.length);
    const bins = Math.min(maxUnits, cw);
    this.binCount = bins;
    if (!this.image || this.image.width !== bins || this.image.height !== nLayers) {
      this.image = new ImageData(bins, nLayers);
      this.pixels = new Uint32Array(this.image.data.buffer);
      this.source.width = bins;
      this.source.height = nLayers;
    }
    fillHeatmapPixels(layers, bins, palette.packed, this.pixels);
    this.sourceCtx.putImageData(this.image, 0, 0);
    const ctx = this.ctx;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.source, 0, 0, bins, nLayers, 0, 0, cw, ch);
    // A background-coloured hairline between bands keeps neighbouring layers apart.
    ctx.fillStyle = rgbCss(palette.theme.background);
    const line = Math.max(1, Math.round(dpr));
    for (let l = 1; l < layers.length; l++) ctx.fillRect(0, Math.round((l * ch) / nLayers), cw, line);
    this.updateLabels(frame, layerColor);
    this.canvas.dataset['index'] = String(frame.index);
    this.canvas.dataset['step'] = String(frame.step);
    this.renders++;
    this.canvas.dataset['renders'] = String(this.renders);
  }

  private updateLabels(frame: MonitorFrame, layerColor: (layer: number) => string): void {
    const key = `${this.bandCss}\u0000${frame.layers.map((l) => l.name).join('\u0000')}`;
    if (key === this.labelKey) return;
    this.labelKey = key;
    this.labels.replaceChildren();
    frame.layers.forEach((layer, i) => {
      const row = document.createElement('div');
      row.className = 'heatmap-label';
      row.style.height = `${this.bandCss}px`;
      row.title = `${layer.name} · ${layer.relativeDeficit.length} units`;
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.backgroundColor = layerColor(i);
      const text = document.createElement('span');
      text.className = 'name';
      text.textContent = layer.name;
      row.append(swatch, text);
      this.labels.append(row);
    });
  }

  /** Recolours label swatches (theme change) without rebuilding them. */
  recolorLabels(layerColor: (layer: number) => string): void {
    this.labels.querySelectorAll<HTMLElement>('.swatch').forEach((s, i) => (s.style.backgroundColor = layerColor(i)));
  }

  /** The unit under a point given in CSS pixels relative to the canvas. */
  hit(x: number, y: number): HeatmapHit | null {
    const f = this.frame;
    if (!f || x < 0 || y < 0 || x >= this.cssWidth) return null;
    const l = Math.floor(y / this.bandCss);
    const layer = f.layers[l];
    if (!layer) return null;
    const d = layer.relativeDeficit;
    const n = d.length;
    if (n === 0) return null;
    const bins = this.binCount;
    const b = Math.min(bins - 1, Math.floor((x / this.cssWidth) * bins));
    let first: number;
    let last: number;
    if (n <= bins) {
      first = last = Math.floor((b * n) / bins);
    } else {
      first = Math.floor((b * n) / bins);
      last = Math.max(first, Math.floor(((b + 1) * n) / bins) - 1);
    }
    let unit = first;
    for (let u = first + 1; u <= last; u++) if (d[u]! > d[unit]! || d[unit] !== d[unit]) unit = u;
    const hit: HeatmapHit = { layer: l, name: layer.name, unit, firstUnit: first, lastUnit: last, relativeDeficit: d[unit]! };
    if (layer.in) hit.in = layer.in[unit]!;
    if (layer.out) hit.out = layer.out[unit]!;
    return hit;
  }
}
