// The monitor: keeps the runs, the selection and the frame cache, turns host messages and
// user input into drawing, and asks the host for frames. Everything that draws or posts goes
// through one requestAnimationFrame flush, so a burst of scrub events or appends costs one
// render and one `requestFrame` per run.

import { BALANCE_DELTA_R, type MonitorFrame, type MonitorHostMessage, type MonitorRunInfo, type MonitorViewState } from '../../server/src/contract/monitor';
import { balanceColor, buildPalette, layerColor, type Palette } from './colorScale';
import { canvasPng, fileStem, seriesCsv } from './export';
import { FrameCache } from './frameCache';
import { Legend } from './legend';
import { RunColumn } from './runColumn';
import { Scrubber, type ScrubberTick } from './scrubber';
import { balanceRows, sameDomain, sharedDomain, type SeriesDomain } from './series';
import { RunSeries } from './seriesData';
import { readViewState, sameViewState } from './state';
import { readTheme, watchTheme } from './theme';
import { formatValue, Tooltip } from './tooltip';
import type { VsCodeApi } from './vscodeApi';

interface Run {
  info: MonitorRunInfo;
  column: RunColumn;
  series: RunSeries | null;
  /** Index of the step shown (or wanted) in this run's series; -1: none. */
  selected: number;
  /** Index asked of the host and not answered yet; -1: none. */
  requested: number;
  /** Lines must be redrawn from scratch (new data, size or theme changed). */
  seriesDirty: boolean;
  /** Steps were appended: draw just those (unless the axes moved). */
  seriesAppended: boolean;
  /** The heatmap must be redrawn even if its frame did not change (size or theme). */
  heatmapDirty: boolean;
}

const PLAY_INTERVAL_MS = 100;
const MAX_NOTICES = 5;

export class Monitor {
  private readonly runs = new Map<string, Run>();
  private order: string[] = [];
  private readonly cache = new FrameCache();
  private palette: Palette;
  private follow: boolean;
  /** The selected step when not following live (selection is by step, so runs logged at different intervals line up). */
  private selectedStep = NaN;
  /** Slider position: index into the timeline run (the one with most steps). */
  private cursor = -1;
  private pendingRestore: Record<string, number>;
  /** Sources from the restored state, kept until the host has sent the runs it restored from them. */
  private restoredSources: MonitorViewState['sources'] | null;
  private playTimer: number | undefined;
  private frameQueued = false;
  private savedState: MonitorViewState | null = null;
  private domain: SeriesDomain | null = null;
  /** What the scrubber's balance ticks were drawn from (timeline, lengths, event counts, theme). */
  private ticksKey = '';

  private readonly scrubber: Scrubber;
  private readonly legend = new Legend();
  private readonly tooltip = new Tooltip();
  private readonly columns: HTMLDivElement;
  private readonly notices: HTMLDivElement;
  private readonly empty: HTMLDivElement;
  private readonly resize: ResizeObserver;

  constructor(
    root: HTMLElement,
    private readonly api: VsCodeApi,
  ) {
    const restored = readViewState(api.getState());
    this.follow = restored.followLive;
    this.pendingRestore = restored.selected;
    this.restoredSources = restored.sources;
    this.palette = buildPalette(readTheme());

    this.scrubber = new Scrubber({
      select: (i) => this.userSelect(i),
      togglePlay: () => this.togglePlay(),
      setFollow: (on) => this.setFollow(on),
    }, this.tooltip);
    this.scrubber.setFollow(this.follow);

    const toolbar = document.createElement('div');
    toolbar.className = 'toolbar';
    const add = document.createElement('button');
    add.type = 'button';
    add.className = 'add-run';
    add.textContent = 'Add run…';
    add.title = 'Compare with another balance log or checkpoint folder';
    add.addEventListener('click', () => this.api.postMessage({ type: 'addRun' }));
    toolbar.append(this.scrubber.element, add);

    this.notices = document.createElement('div');
    this.notices.className = 'notices';
    this.columns = document.createElement('div');
    this.columns.className = 'runs';
    this.empty = document.createElement('div');
    this.empty.className = 'empty';
    this.empty.textContent = 'No runs yet. Add a balance log or a checkpoint folder to watch.';

    root.append(toolbar, this.legend.element, this.notices, this.empty, this.columns);
    this.legend.draw(this.palette);

    this.resize = new ResizeObserver((entries) => {
      for (const e of entries) {
        const run = this.runs.get((e.target as HTMLElement).dataset['runId'] ?? '');
        if (run) this.fitColumn(run);
      }
      this.schedule();
    });
    watchTheme(() => this.themeChanged());
    document.addEventListener('keydown', (e) => this.onKey(e));
    window.addEventListener('message', (e: MessageEvent) => {
      const msg = e.data as MonitorHostMessage;
      try {
        this.handle(msg);
      } catch (err) {
        // A malformed message (a series whose arrays disagree) is shown, not a silently frozen run.
        const runId = (msg as { runId?: string }).runId ?? (msg as { series?: { runId?: string } }).series?.runId;
        this.notice('error', `could not show a "${msg?.type}" message: ${(err as Error).message}`, runId);
        this.schedule();
      }
    });
    this.saveState();
  }

  // ---------------------------------------------------------------- host messages

  handle(msg: MonitorHostMessage): void {
    switch (msg.type) {
      case 'runs':
        this.setRuns(msg.runs);
        break;
      case 'series': {
        const run = this.runs.get(msg.series.runId);
        if (!run) return;
        run.series = RunSeries.from(msg.series);
        run.seriesDirty = true;
        run.requested = -1;
        const restore = this.pendingRestore[run.info.id];
        delete this.pendingRestore[run.info.id];
        if (!this.follow && restore !== undefined && run.series.length > 0) {
          this.selectedStep = run.series.step(Math.min(restore, run.series.length - 1));
        }
        this.reselect();
        break;
      }
      case 'seriesAppend': {
        const run = this.runs.get(msg.runId);
        if (!run?.series) return;
        run.series.append(msg.steps, msg.times, msg.values, msg.balance);
        run.seriesAppended = true;
        this.reselect();
        break;
      }
      case 'runReset': {
        const run = this.runs.get(msg.runId);
        if (!run) return;
        run.series?.reset();
        this.cache.dropRun(run.info.id);
        run.selected = -1;
        run.requested = -1;
        run.seriesDirty = true;
        run.column.heatmap.clear(this.palette);
        run.column.updateAffordances(null);
        this.reselect();
        break;
      }
      case 'frame':
        this.receiveFrame(msg.frame);
        break;
      case 'notice':
        this.notice(msg.level, msg.message, msg.runId);
        break;
    }
    this.schedule();
  }

  private setRuns(infos: MonitorRunInfo[]): void {
    this.restoredSources = null;
    const keep = new Set(infos.map((r) => r.id));
    for (const [id, run] of this.runs) {
      if (keep.has(id)) continue;
      this.resize.unobserve(run.column.element);
      run.column.element.remove();
      this.cache.dropRun(id);
      this.runs.delete(id);
    }
    for (const info of infos) {
      const existing = this.runs.get(info.id);
      if (existing) {
        existing.column.setInfo(info);
        continue;
      }
      const column = new RunColumn(info, {
        exportPng: (id) => void this.exportPng(id),
        exportCsv: (id) => this.exportCsv(id),
        remove: (id) => this.api.postMessage({ type: 'removeRun', runId: id }),
        openUnit: (runId, frame, hit) =>
          this.api.postMessage({ type: 'openUnit', runId, index: frame.index, layer: hit.name, unit: hit.unit }),
      }, this.tooltip);
      const run: Run = { info, column, series: null, selected: -1, requested: -1, seriesDirty: true, seriesAppended: false, heatmapDirty: false };
      this.runs.set(info.id, run);
      column.heatmap.clear(this.palette);
      column.updateAffordances(null);
      this.resize.observe(column.element);
    }
    this.order = infos.map((r) => r.id);
    // Re-append in the host's order (moving a node keeps its canvases).
    for (const id of this.order) this.columns.append(this.runs.get(id)!.column.element);
    this.empty.hidden = this.order.length > 0;
    this.reselect();
  }

  private receiveFrame(frame: MonitorFrame): void {
    const run = this.runs.get(frame.runId);
    if (!run) return;
    this.cache.put(frame);
    if (run.requested === frame.index) run.requested = -1;
  }

  private notice(level: 'info' | 'warning' | 'error', message: string, runId?: string): void {
    const item = document.createElement('div');
    item.className = `notice ${level}`;
    item.setAttribute('role', level === 'error' ? 'alert' : 'status');
    const text = document.createElement('span');
    const run = runId ? this.runs.get(runId) : undefined;
    text.textContent = run ? `${run.info.label}: ${message}` : message;
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'dismiss';
    close.textContent = '✕';
    close.title = 'Dismiss';
    close.addEventListener('click', () => item.remove());
    item.append(text, close);
    this.notices.append(item);
    while (this.notices.childElementCount > MAX_NOTICES) this.notices.firstElementChild!.remove();
  }

  // ---------------------------------------------------------------- selection

  /** The run whose steps the slider walks: the longest. */
  private timeline(): Run | undefined {
    let best: Run | undefined;
    for (const id of this.order) {
      const r = this.runs.get(id)!;
      if (r.series && r.series.length > (best?.series?.length ?? 0)) best = r;
    }
    return best;
  }

  /** Recomputes every run's selected index from follow-live or the selected step. */
  private reselect(): void {
    const timeline = this.timeline();
    const len = timeline?.series?.length ?? 0;
    if (!timeline || len === 0) {
      this.cursor = -1;
      for (const run of this.runs.values()) if (run.series?.length === 0) run.selected = -1;
    } else if (this.follow) {
      this.cursor = len - 1;
      for (const run of this.runs.values()) run.selected = run.series ? run.series.length - 1 : -1;
    } else {
      if (this.selectedStep !== this.selectedStep) this.selectedStep = timeline.series!.step(len - 1);
      if (this.cursor < 0 || this.cursor >= len || timeline.series!.step(this.cursor) !== this.selectedStep) {
        this.cursor = timeline.series!.indexAtOrBefore(this.selectedStep);
      }
      for (const run of this.runs.values()) run.selected = this.alignedIndex(run, timeline);
    }
    this.updateScrubber();
  }

  private alignedIndex(run: Run, timeline: Run): number {
    const s = run.series;
    if (!s || s.length === 0) return -1;
    if (run === timeline) return this.cursor;
    return s.isMonotone() ? s.indexAtOrBefore(this.selectedStep) : Math.min(this.cursor, s.length - 1);
  }

  private userSelect(index: number, fromPlay = false): void {
    const timeline = this.timeline();
    const len = timeline?.series?.length ?? 0;
    if (!timeline || len === 0) return;
    const i = Math.max(0, Math.min(len - 1, Math.round(index)));
    if (!fromPlay && this.playTimer !== undefined) this.stopPlay();
    // Scrubbing back in time means looking at the past: stop jumping to new steps.
    if (this.follow && i < len - 1) {
      this.follow = false;
      this.scrubber.setFollow(false);
    }
    this.cursor = i;
    this.selectedStep = timeline.series!.step(i);
    for (const run of this.runs.values()) {
      run.selected = this.follow ? (run.series ? run.series.length - 1 : -1) : this.alignedIndex(run, timeline);
      // The cursor moves now, synchronously: it is what makes scrubbing feel immediate.
      run.column.series.drawCursor(run.selected, run.series);
    }
    this.updateScrubber();
    this.schedule();
  }

  private setFollow(on: boolean): void {
    this.follow = on;
    this.scrubber.setFollow(on);
    if (on) this.stopPlay();
    else {
      const t = this.timeline();
      if (t?.series && t.series.length > 0 && this.cursor >= 0) this.selectedStep = t.series.step(this.cursor);
    }
    this.reselect();
    this.schedule();
  }

  private togglePlay(): void {
    if (this.playTimer !== undefined) {
      this.stopPlay();
      return;
    }
    const t = this.timeline();
    const len = t?.series?.length ?? 0;
    if (len < 2) return;
    if (this.cursor >= len - 1) this.userSelect(0, true);
    if (this.follow) this.setFollow(false);
    // Long runs play in about 20 s rather than one step per tick.
    const stride = Math.max(1, Math.round(len / 200));
    this.playTimer = window.setInterval(() => {
      const l = this.timeline()?.series?.length ?? 0;
      const next = Math.min(l - 1, this.cursor + stride);
      this.userSelect(next, true);
      if (next >= l - 1) this.stopPlay();
    }, PLAY_INTERVAL_MS);
    this.scrubber.setPlaying(true);
  }

  private stopPlay(): void {
    if (this.playTimer === undefined) return;
    window.clearInterval(this.playTimer);
    this.playTimer = undefined;
    this.scrubber.setPlaying(false);
  }

  private onKey(e: KeyboardEvent): void {
    const target = e.target as HTMLElement | null;
    const tag = target?.tagName;
    // The slider handles its own arrows; text fields and buttons keep their keys.
    if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || (tag === 'BUTTON' && (e.key === ' ' || e.key === 'Enter'))) return;
    const len = this.timeline()?.series?.length ?? 0;
    const big = Math.max(1, Math.round(len / 20));
    let next: number | undefined;
    switch (e.key) {
      case 'ArrowLeft': next = this.cursor - (e.shiftKey ? big : 1); break;
      case 'ArrowRight': next = this.cursor + (e.shiftKey ? big : 1); break;
      case 'PageUp': next = this.cursor - big; break;
      case 'PageDown': next = this.cursor + big; break;
      case 'Home': next = 0; break;
      case 'End': next = len - 1; break;
      case ' ': this.togglePlay(); e.preventDefault(); return;
      default: return;
    }
    e.preventDefault();
    this.userSelect(next);
  }

  private updateScrubber(): void {
    const t = this.timeline();
    const len = t?.series?.length ?? 0;
    this.scrubber.setRange(len);
    if (this.cursor >= 0) this.scrubber.setValue(this.cursor);
    this.scrubber.setLabel(len === 0 ? 'no steps yet' : `step ${t!.series!.step(this.cursor)} · ${this.cursor + 1} / ${len}${this.follow ? ' · live' : ''}`);
  }

  /** The scrubber's balance ticks: every run's events, placed at the timeline index of their step. */
  private updateBalanceTicks(): void {
    const t = this.timeline();
    const len = t?.series?.length ?? 0;
    let key = `${t?.info.id}:${len}:${this.palette.theme.kind}:${this.palette.theme.balance?.join(',')}`;
    for (const id of this.order) key += `:${this.runs.get(id)!.series?.balanceCount ?? 0}`;
    if (key === this.ticksKey) return;
    this.ticksKey = key;
    const ticks: ScrubberTick[] = [];
    if (t && len > 0) {
      const tl = t.series!;
      const aligned = tl.isMonotone();
      for (const id of this.order) {
        const run = this.runs.get(id)!;
        const s = run.series;
        if (!s) continue;
        for (let e = 0; e < s.balanceCount; e++) {
          const i = s.balanceIndex(e);
          const at = run === t || !aligned ? Math.min(i, len - 1) : tl.indexAtOrBefore(s.step(i));
          ticks.push({ at: len > 1 ? at / (len - 1) : 0.5, rows: () => [['run', run.info.label], ...balanceRows(s, e)] });
        }
      }
    }
    this.scrubber.setBalanceTicks(ticks, balanceColor(this.palette.theme));
  }

  // ---------------------------------------------------------------- drawing

  private schedule(): void {
    if (this.frameQueued) return;
    this.frameQueued = true;
    requestAnimationFrame(() => this.flushNow());
  }

  /** Draws what changed and asks for missing frames. Public for the browser benchmark. */
  flushNow(): void {
    this.frameQueued = false;
    const layerColorOf = (l: number) => layerColor(l, this.palette.theme);
    // Runs share axes; when one run's data widens them, every run's lines are redrawn.
    const domain = sharedDomain([...this.runs.values()].flatMap((r) => (r.series ? [r.series] : [])));
    if (!sameDomain(this.domain, domain)) {
      this.domain = domain;
      for (const run of this.runs.values()) run.seriesDirty = true;
    }
    for (const id of this.order) {
      const run = this.runs.get(id)!;
      const col = run.column;
      if (run.series && run.seriesDirty) col.series.draw(run.series, this.palette, domain);
      else if (run.series && run.seriesAppended) col.series.extend(run.series, this.palette, domain);
      run.seriesDirty = run.seriesAppended = false;
      col.series.drawCursor(run.selected, run.series);
      const len = run.series?.length ?? 0;
      if (run.selected < 0) {
        col.setStatus(run.series ? 'no steps yet' : 'loading…');
        continue;
      }
      const step = run.series!.step(run.selected);
      const frame = this.cache.get(id, run.selected);
      const ev = run.series!.balanceAt(run.selected);
      const balanced = ev < 0 ? '' : ` · balanced, ΔR ${formatValue(run.series!.balanceValue(ev, BALANCE_DELTA_R), 4)}`;
      if (frame) {
        if (col.heatmap.current !== frame || run.heatmapDirty) {
          col.heatmap.render(frame, this.palette, layerColorOf);
          col.updateAffordances(frame);
          run.heatmapDirty = false;
        }
        col.setStatus(`step ${frame.step} · ${run.selected + 1} / ${len}${balanced}`);
      } else {
        if (run.requested !== run.selected) {
          run.requested = run.selected;
          this.api.postMessage({ type: 'requestFrame', runId: id, index: run.selected });
        }
        if (run.heatmapDirty && col.heatmap.current) {
          col.heatmap.render(col.heatmap.current, this.palette, layerColorOf);
          run.heatmapDirty = false;
        }
        col.setStatus(`step ${step} · ${run.selected + 1} / ${len}${balanced} · loading…`);
      }
    }
    this.updateBalanceTicks();
    this.saveState();
  }

  private fitColumn(run: Run): void {
    const width = run.column.element.clientWidth;
    if (width <= 0) return;
    const labels = run.column.heatmap.element.firstElementChild as HTMLElement;
    if (run.column.heatmap.setWidth(width - labels.offsetWidth - 4)) run.heatmapDirty = true;
    if (run.column.series.setWidth(width)) run.seriesDirty = true;
  }

  private themeChanged(): void {
    this.palette = buildPalette(readTheme());
    this.legend.draw(this.palette);
    for (const run of this.runs.values()) {
      run.seriesDirty = true;
      run.heatmapDirty = true;
      run.column.heatmap.recolorLabels((l) => layerColor(l, this.palette.theme));
      if (!run.column.heatmap.current) run.column.heatmap.clear(this.palette);
    }
    document.body.dataset['theme'] = this.palette.theme.kind;
    this.schedule();
  }

  // ---------------------------------------------------------------- export and state

  private async exportPng(runId: string): Promise<void> {
    const run = this.runs.get(runId);
    const frame = run?.column.heatmap.current;
    if (!run || !frame) return;
    try {
      const png = await canvasPng(run.column.heatmap.canvas);
      this.api.postMessage({ type: 'exportPng', suggestedName: `${fileStem(run.info.label)}-step${frame.step}.png`, png });
    } catch (err) {
      this.notice('error', `PNG export failed: ${(err as Error).message}`, runId);
    }
  }

  private exportCsv(runId: string): void {
    const run = this.runs.get(runId);
    if (!run?.series) return;
    this.api.postMessage({ type: 'exportCsv', suggestedName: `${fileStem(run.info.label)}-series.csv`, csv: seriesCsv(run.series) });
  }

  private saveState(): void {
    const selected: Record<string, number> = {};
    if (!this.follow) for (const [id, run] of this.runs) if (run.selected >= 0) selected[id] = run.selected;
    // Runs whose series has not arrived yet keep the selection they were restored with.
    for (const [id, i] of Object.entries(this.pendingRestore)) if (!(id in selected)) selected[id] = i;
    const state: MonitorViewState = {
      sources: this.restoredSources ?? this.order.map((id) => ({ kind: this.runs.get(id)!.info.kind, source: this.runs.get(id)!.info.source })),
      followLive: this.follow,
      selected,
    };
    if (this.savedState && sameViewState(this.savedState, state)) return;
    this.savedState = state;
    this.api.setState(state);
  }
}
