// The colour scale's key: the 256 LUT colours left (1e-4) to right (1), decade ticks, and a
// swatch for dead units.

import { legendTicks, LUT_SIZE, rgbCss, type Palette } from './colorScale';

export class Legend {
  readonly element: HTMLDivElement;
  readonly bar: HTMLCanvasElement;
  readonly deadSwatch: HTMLSpanElement;

  constructor() {
    this.element = document.createElement('div');
    this.element.className = 'legend';
    const title = document.createElement('span');
    title.className = 'legend-title';
    title.textContent = 'Relative deficit |IN − OUT| / (IN + OUT)';
    const scale = document.createElement('div');
    scale.className = 'legend-scale';
    this.bar = document.createElement('canvas');
    this.bar.className = 'legend-bar';
    this.bar.width = LUT_SIZE;
    this.bar.height = 1;
    const ticks = document.createElement('div');
    ticks.className = 'legend-ticks';
    for (const t of legendTicks()) {
      const tick = document.createElement('span');
      tick.className = 'legend-tick';
      tick.textContent = t.label;
      tick.style.left = `${t.position * 100}%`;
      ticks.append(tick);
    }
    scale.append(this.bar, ticks);
    const dead = document.createElement('span');
    dead.className = 'legend-dead';
    this.deadSwatch = document.createElement('span');
    this.deadSwatch.className = 'swatch dead-swatch';
    dead.append(this.deadSwatch, document.createTextNode(' dead (IN = OUT = 0)'));
    this.element.append(title, scale, dead);
  }

  draw(palette: Palette): void {
    const ctx = this.bar.getContext('2d')!;
    const img = new ImageData(LUT_SIZE, 1);
    new Uint32Array(img.data.buffer).set(palette.packed.subarray(0, LUT_SIZE));
    ctx.putImageData(img, 0, 0);
    this.deadSwatch.style.backgroundColor = rgbCss(palette.dead);
  }
}
