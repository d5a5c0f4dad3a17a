// A run read from a balance log: tails the file, keeps per-step scalars and each step's byte
// range, and reads a step's heatmap back from its bytes when asked.
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MonitorFrame } from '../../../../server/src/contract/monitor';
import { FileTail, nodeTailFs, type TailFs } from './fileTail';
import { layerFrame, layerScalars, unitCount } from './layerFigures';
import { LineSplitter, type Line } from './lineSplitter';
import { parseRecord, type LogRecord } from '../../../../server/src/contract/balanceLog';
import { PolledRun } from './polledRun';
import type { RunEvents } from './runEvents';

/** Malformed lines reported one by one; past these, one notice says the rest are skipped. */
const MAX_SKIP_NOTICES = 10;

export interface LogRunOptions {
  pollMs?: number;
  /** For tests: the file system the tail reads through. */
  fs?: TailFs;
}

/** Start and end byte offsets per step, growable (offsets fit float64 exactly up to 2^53). */
class ByteRanges {
  private data = new Float64Array(512);
  length = 0;
  push(start: number, end: number): void {
    if (2 * this.length + 2 > this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[2 * this.length] = start;
    this.data[2 * this.length + 1] = end;
    this.length++;
  }
  at(i: number): [number, number] {
    return [this.data[2 * i], this.data[2 * i + 1]];
  }
  clear(): void {
    this.length = 0;
  }
}

export class LogRun extends PolledRun {
  private readonly tail: FileTail;
  private readonly splitter = new LineSplitter();
  private readonly ranges = new ByteRanges();
  private label: string | undefined;
  private missingReported = false;
  /** Malformed lines since the start (or the last reset). */
  private skipped = 0;
  private disposed = false;

  constructor(
    readonly file: string,
    id: string,
    events: RunEvents,
    opts: LogRunOptions = {},
  ) {
    super({ id, label: basename(file), kind: 'log', source: pathToFileURL(file).href }, file, events, opts.pollMs ?? 1000);
    this.tail = new FileTail(file, opts.fs ?? nodeTailFs);
  }

  override dispose(): void {
    this.disposed = true;
    super.dispose();
    void this.tail.close();
  }

  protected async poll(): Promise<void> {
    const outcome = await this.tail.poll(
      (bytes, offset) => {
        for (const line of this.splitter.push(bytes, offset)) this.take(line);
      },
      () => this.resetRun(),
    );
    // Disposed while reading: the tail may have opened the file again.
    if (this.disposed) return void (await this.tail.close());
    this.pollSucceeded();
    if (outcome === 'missing' && !this.missingReported) {
      this.missingReported = true;
      this.notice('info', `${this.file} does not exist yet; waiting for it`);
    }
    this.flush();
  }

  private resetRun(): void {
    this.splitter.reset();
    this.store.clear();
    this.ranges.clear();
    this.skipped = 0;
    this.invalidate();
    this.notice('info', `${this.file} was truncated or replaced: reading it again from the start`);
  }

  private take(line: Line): void {
    if (line.text.trim() === '') return;
    let rec: LogRecord;
    try {
      rec = parseRecord(line.text);
    } catch (e) {
      // A file that is not a balance log at all (a checkpoint picked by mistake) would otherwise
      // send one notice per "line" of binary.
      this.skipped++;
      if (this.skipped <= MAX_SKIP_NOTICES) this.notice('warning', `${this.file}:${line.number}: skipped: ${(e as Error).message}`);
      else if (this.skipped === MAX_SKIP_NOTICES + 1) this.notice('warning', `${this.file}: more malformed lines (from line ${line.number}) are skipped without a notice each${this.store.length === 0 ? '; no line so far is a balance-log record: is this a balance log?' : ''}`);
      return;
    }
    const scalars = new Map(rec.layers.map((l) => [l.name, layerScalars(l)]));
    const units = new Map(rec.layers.map((l) => [l.name, unitCount(l)]));
    const r = this.store.add({ step: rec.step, time: rec.time, layers: scalars, units, balance: rec.balance });
    this.ranges.push(line.start, line.end);
    if (r.newLayers.length > 0) this.notice('info', `${this.file}:${line.number}: layer(s) ${r.newLayers.join(', ')} first logged at step ${rec.step}`);
    // A grown layout invalidates what the host holds: it gets the whole series again.
    if (r.relayout) this.invalidate();
    if (rec.run !== undefined && rec.run !== this.label) {
      this.label = rec.run;
      this.info.label = rec.run;
      this.events.label?.(rec.run);
    }
  }

  async frame(index: number): Promise<MonitorFrame> {
    if (!Number.isInteger(index) || index < 0 || index >= this.store.length) {
      throw new Error(`${this.file}: no step at index ${index} (the log has ${this.store.length} step(s) so far)`);
    }
    const [start, end] = this.ranges.at(index);
    const bytes = await this.tail.readRange(start, end);
    let rec: LogRecord;
    try {
      rec = parseRecord(bytes.toString('utf8'));
    } catch (e) {
      throw new Error(`${this.file}: step at index ${index} (bytes ${start}–${end}) no longer reads as a record: ${(e as Error).message}`);
    }
    return { runId: this.info.id, index, step: rec.step, time: rec.time, layers: rec.layers.map(layerFrame) };
  }
}

export function openLogRun(file: string, id: string, events: RunEvents, opts?: { pollMs?: number }): LogRun {
  return new LogRun(file, id, events, opts);
}
