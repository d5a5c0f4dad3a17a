// One run's column: title and actions, its heatmap (with hover and click), its time series.

import type { MonitorFrame, MonitorRunInfo } from '../../server/src/contract/monitor';
import { HeatmapView, type HeatmapHit } from './heatmap';
import { SeriesView } from './series';
import { formatValue, type Tooltip } from './tooltip';

export interface RunColumnEvents {
  exportPng(runId: string): void;
  exportCsv(runId: string): void;
  remove(runId: string): void;
  openUnit(runId: string, frame: MonitorFrame, hit: HeatmapHit): void;
}


export function hitRows(hit: HeatmapHit, frame: MonitorFrame): [string, string][] {
  const rows: [string, string][] = [
    ['layer', hit.name],
    ['unit', hit.firstUnit === hit.lastUnit ? String(hit.unit) : `${hit.unit} (worst of ${hit.firstUnit}–${hit.lastUnit})`],
    ['step', String(frame.step)],
    ['relative deficit', hit.relativeDeficit !== hit.relativeDeficit ? 'dead (IN = OUT = 0)' : formatValue(hit.relativeDeficit, 4)],
  ];
  if (hit.in !== undefined) rows.push(['IN', formatValue(hit.in, 5)]);
  if (hit.out !== undefined) rows.push(['OUT', formatValue(hit.out, 5)]);
  return rows;
}

export class RunColumn {
  readonly element: HTMLElement;
  readonly heatmap = new HeatmapView();
  readonly series: SeriesView;
  readonly pngButton: HTMLButtonElement;
  readonly csvButton: HTMLButtonElement;
  private readonly title: HTMLSpanElement;
  private readonly status: HTMLDivElement;

  constructor(
    public info: MonitorRunInfo,
    events: RunColumnEvents,
    tooltip: Tooltip,
  ) {
    this.series = new SeriesView(tooltip);
    this.element = document.createElement('section');
    this.element.className = 'run';
    this.element.dataset['runId'] = info.id;

    const header = document.createElement('header');
    header.className = 'run-header';
    this.title = document.createElement('span');
    this.title.className = 'run-title';
    const button = (cls: string, text: string, title: string, onClick: () => void) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = cls;
      b.textContent = text;
      b.title = title;
      b.addEventListener('click', onClick);
      return b;
    };
    this.pngButton = button('export-png', 'PNG', 'Export this heatmap as PNG', () => events.exportPng(this.info.id));
    this.csvButton = button('export-csv', 'CSV', 'Export the time series as CSV', () => events.exportCsv(this.info.id));
    const remove = button('remove-run', '✕', 'Remove this run from the monitor', () => events.remove(this.info.id));
    header.append(this.title, this.pngButton, this.csvButton, remove);

    this.status = document.createElement('div');
    this.status.className = 'run-status';

    this.element.append(header, this.status, this.heatmap.element, this.series.element);
    this.setInfo(info);

    const canvas = this.heatmap.canvas;
    const hitAt = (e: MouseEvent) => {
      const r = canvas.getBoundingClientRect();
      return this.heatmap.hit(e.clientX - r.left, e.clientY - r.top);
    };
    canvas.addEventListener('mousemove', (e) => {
      const frame = this.heatmap.current;
      const hit = hitAt(e);
      if (!frame || !hit) {
        tooltip.hide();
        return;
      }
      tooltip.show(e.clientX, e.clientY, hitRows(hit, frame));
    });
    canvas.addEventListener('mouseleave', () => tooltip.hide());
    canvas.addEventListener('click', (e) => {
      const frame = this.heatmap.current;
      const hit = hitAt(e);
      if (frame?.checkpoint && hit) events.openUnit(this.info.id, frame, hit);
    });
  }

  setInfo(info: MonitorRunInfo): void {
    this.info = info;
    this.title.textContent = info.label;
    this.title.title = `${info.kind === 'log' ? 'Balance log' : 'Checkpoint folder'}: ${info.source}`;
  }

  setStatus(text: string): void {
    if (this.status.textContent !== text) this.status.textContent = text;
  }

  /** After a frame is shown: clicking a cell opens a listing only when the frame has a checkpoint. */
  updateAffordances(frame: MonitorFrame | null): void {
    this.heatmap.canvas.classList.toggle('clickable', !!frame?.checkpoint);
    this.pngButton.disabled = !frame;
  }
}
