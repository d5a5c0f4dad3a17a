// The shared step control: play/pause, a range over the longest run's steps, the selected
// step, and "follow live". It only reports what the user did; the monitor decides.

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
  private readonly label: HTMLSpanElement;

  constructor(events: ScrubberEvents) {
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

    this.element.append(this.playButton, this.slider, this.label, follow);
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
}
