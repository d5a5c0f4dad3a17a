// The shared step control: play/pause, a range over the longest run's steps, the selected
// step, and "follow live". It only reports what the user did; the monitor decides. Under the
// slider, a strip marks the steps where a run was balanced (hover: the event's figures).

import { rgbCss, type Rgb } from './colorScale';
import type { Tooltip } from './tooltip';

/** A balance tick on the strip: where (0 … 1 along the slider) and what its tooltip says. */
export interface ScrubberTick {
  at: number;
  rows(): [string, string][];
}

/** The range input's track starts and ends about half a thumb in from its box. */
const THUMB_INSET = 8;
const STRIP_HEIGHT = 6;

export interface ScrubberEvents {
  /** The user moved to `index` (slider drag, keys, play). */
  select(index: number): void;
  togglePlay(): void;
  setFollow(on: boolean): void;
}

export class Scrubber {
  readonly element: HTMLDivElement;
  readonly slider: HTMLInputElement;
  readonly playButton: HTMLButtonElement;
  readonly followBox: HTMLInputElement;
  /** Balance ticks under the slider. */
  readonly strip: HTMLCanvasElement;
  private readonly label: HTMLSpanElement;
  private ticks: ScrubberTick[] = [];
  private tickColor: Rgb = [137, 209, 133];

  constructor(events: ScrubberEvents, tooltip?: Tooltip) {
    this.element = document.createElement('div');
    this.element.className = 'scrubber';

    this.playButton = document.createElement('button');
    this.playButton.className = 'play';
    this.playButton.type = 'button';
    this.playButton.addEventListener('click', () => events.togglePlay());

    this.slider = document.createElement('input');
    this.slider.type = 'range';
    this.slider.className = 'step-slider';
    this.slider.min = '0';
    this.slider.max = '0';
    this.slider.step = '1';
    this.slider.value = '0';
    this.slider.setAttribute('aria-label', 'Step');
    this.slider.addEventListener('input', () => events.select(this.slider.valueAsNumber));

    this.strip = document.createElement('canvas');
    this.strip.className = 'balance-strip';
    this.strip.dataset['ticks'] = '0';
    const wrap = document.createElement('div');
    wrap.className = 'slider-wrap';
    wrap.append(this.slider, this.strip);
    new ResizeObserver(() => this.drawTicks()).observe(wrap);
    this.strip.addEventListener('mousemove', (e) => {
      const t = this.tickAt(e.clientX - this.strip.getBoundingClientRect().left);
      if (t && tooltip) tooltip.show(e.clientX, e.clientY, t.rows());
      else tooltip?.hide();
    });
    this.strip.addEventListener('mouseleave', () => tooltip?.hide());

    this.label = document.createElement('span');
    this.label.className = 'step-label';
    this.label.setAttribute('aria-live', 'polite');

    const follow = document.createElement('label');
    follow.className = 'follow';
    this.followBox = document.createElement('input');
    this.followBox.type = 'checkbox';
    this.followBox.className = 'follow-live';
    this.followBox.addEventListener('change', () => events.setFollow(this.followBox.checked));
    follow.append(this.followBox, document.createTextNode(' Follow live'));

    this.element.append(this.playButton, wrap, this.label, follow);
    this.setPlaying(false);
  }

  setRange(count: number): void {
    const max = String(Math.max(0, count - 1));
    if (this.slider.max !== max) this.slider.max = max;
    this.slider.disabled = count <= 1;
  }

  setValue(index: number): void {
    if (this.slider.valueAsNumber !== index) this.slider.value = String(index);
  }

  setLabel(text: string): void {
    if (this.label.textContent !== text) this.label.textContent = text;
  }

  setPlaying(playing: boolean): void {
    this.playButton.textContent = playing ? '⏸' : '▶';
    this.playButton.title = playing ? 'Pause (Space)' : 'Play (Space)';
    this.playButton.setAttribute('aria-pressed', String(playing));
  }

  setFollow(on: boolean): void {
    this.followBox.checked = on;
  }

  /** Replaces the balance ticks (positions 0 … 1 along the slider). */
  setBalanceTicks(ticks: ScrubberTick[], color: Rgb): void {
    this.ticks = ticks;
    this.tickColor = color;
    this.strip.dataset['ticks'] = String(ticks.length);
    this.strip.title = ticks.length ? `${ticks.length} balance event${ticks.length > 1 ? 's' : ''}` : '';
    this.drawTicks();
  }

  private tickX(t: ScrubberTick, width: number): number {
    return Math.floor(THUMB_INSET + t.at * Math.max(0, width - 2 * THUMB_INSET));
  }

  private tickAt(cssX: number): ScrubberTick | undefined {
    const w = this.strip.clientWidth;
    let best: ScrubberTick | undefined;
    let dist = 4.5;
    for (const t of this.ticks) {
      const d = Math.abs(this.tickX(t, w) + 0.5 - cssX);
      if (d < dist) {
        dist = d;
        best = t;
      }
    }
    return best;
  }

  private drawTicks(): void {
    const c = this.strip;
    const w = c.clientWidth;
    const dpr = window.devicePixelRatio || 1;
    const pw = Math.round(w * dpr);
    const ph = Math.round(STRIP_HEIGHT * dpr);
    if (c.width !== pw || c.height !== ph) {
      c.width = pw;
      c.height = ph;
    }
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, STRIP_HEIGHT);
    ctx.fillStyle = rgbCss(this.tickColor);
    for (const t of this.ticks) ctx.fillRect(this.tickX(t, w) - 1, 0, 3, STRIP_HEIGHT);
  }
}
