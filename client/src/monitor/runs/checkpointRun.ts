// A run made of a folder of checkpoints: each checkpoint that has settled becomes a step,
// analysed by the host's `costsOf` (the server's synbal/checkpointCosts); a failure is a
// notice and the run goes on.
import { promises as fsp } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MonitorFrame } from '../../../../server/src/contract/monitor';
import type { CheckpointCostsResult } from '../../../../server/src/contract/requests';
import { compareCheckpoints, stepNumberOf } from './checkpointOrder';
import { layersOfCosts } from './costsFigures';
import { layerFrame, layerScalars, unitCount } from './layerFigures';
import { PolledRun } from './polledRun';
import type { CostsOf, RunEvents } from './runEvents';
import { SettledFiles, type FileStamp } from './settledFiles';

/** What a model file is called by the formats the server reads (.json is too common to watch). */
export const CHECKPOINT_EXTENSIONS = ['.onnx', '.pt', '.pth', '.ckpt', '.bin', '.safetensors', '.h5', '.hdf5', '.keras', '.npz', '.npy'];

export interface CheckpointRunOptions {
  pollMs?: number;
  settleMs?: number;
  extensions?: string[];
}

interface StepEntry {
  file: string;
  stepNumber?: number;
  mtimeMs: number;
  step: number;
  time: number;
  layers: Map<string, ReturnType<typeof layerScalars>>;
  units: Map<string, number>;
}

const CACHED_FRAMES = 8;

export class CheckpointRun extends PolledRun {
  private readonly settled: SettledFiles;
  private readonly extensions: string[];
  private entries: StepEntry[] = [];
  /** Recent costs by file and stamp: scrubbing back and forth need not re-analyse. */
  private readonly cache = new Map<string, CheckpointCostsResult>();

  constructor(
    readonly folder: string,
    id: string,
    events: RunEvents,
    private readonly costsOf: CostsOf,
    opts: CheckpointRunOptions = {},
  ) {
    super({ id, label: basename(folder), kind: 'checkpoints', source: pathToFileURL(folder).href }, folder, events, opts.pollMs ?? 2000);
    this.settled = new SettledFiles(opts.settleMs ?? 1000);
    this.extensions = (opts.extensions ?? CHECKPOINT_EXTENSIONS).map((e) => (e.startsWith('.') ? e : `.${e}`).toLowerCase());
  }

  private async listing(): Promise<FileStamp[]> {
    const names = await fsp.readdir(this.folder);
    const out: FileStamp[] = [];
    for (const name of names) {
      if (!this.extensions.some((e) => name.toLowerCase().endsWith(e))) continue;
      const file = join(this.folder, name);
      try {
        const st = await fsp.stat(file);
        if (st.isFile()) out.push({ file, size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // Deleted between readdir and stat.
      }
    }
    return out;
  }

  private async costs(file: string, mtimeMs: number): Promise<CheckpointCostsResult> {
    const k = `${file}\0${mtimeMs}`;
    const hit = this.cache.get(k);
    if (hit) return hit;
    const r = await this.costsOf(file);
    this.cache.set(k, r);
    if (this.cache.size > CACHED_FRAMES) this.cache.delete(this.cache.keys().next().value!);
    return r;
  }

  protected async poll(): Promise<void> {
    const ready = this.settled.update(await this.listing(), Date.now());
    this.pollSucceeded();
    ready.sort((a, b) => compareCheckpoints({ ...a, stepNumber: stepNumberOf(a.file) }, { ...b, stepNumber: stepNumberOf(b.file) }));
    let reorder = false;
    for (const s of ready) {
      let r: CheckpointCostsResult;
      try {
        r = await this.costs(s.file, s.mtimeMs);
      } catch (e) {
        this.notice('error', `${s.file}: ${(e as Error).message ?? String(e)}`);
        continue;
      }
      let layers;
      try {
        layers = layersOfCosts(r);
      } catch (e) {
        this.notice('error', (e as Error).message);
        continue;
      }
      const stepNumber = stepNumberOf(s.file);
      const entry: StepEntry = {
        file: s.file,
        stepNumber,
        mtimeMs: s.mtimeMs,
        step: stepNumber ?? this.entries.length,
        time: s.mtimeMs / 1000,
        layers: new Map(layers.map((l) => [l.name, layerScalars(l)])),
        units: new Map(layers.map((l) => [l.name, unitCount(l)])),
      };
      const last = this.entries[this.entries.length - 1];
      if (last && compareCheckpoints(entry, last) < 0) reorder = true;
      this.entries.push(entry);
      if (!reorder) {
        const a = this.store.add(entry);
        if (a.newLayers.length > 0) this.notice('info', `${s.file}: layer(s) ${a.newLayers.join(', ')} first seen here`);
        if (a.relayout) this.invalidate();
      }
    }
    if (reorder) {
      // A checkpoint that sorts before ones already shown (saved late, or renamed): rebuild.
      this.entries.sort(compareCheckpoints);
      this.store.clear();
      for (const e of this.entries) this.store.add(e);
      this.invalidate();
    }
    this.flush();
  }

  async frame(index: number): Promise<MonitorFrame> {
    const e = Number.isInteger(index) ? this.entries[index] : undefined;
    if (!e || index >= this.store.length) throw new Error(`${this.folder}: no checkpoint at index ${index} (the run has ${this.store.length} so far)`);
    const r = await this.costs(e.file, e.mtimeMs);
    return {
      runId: this.info.id,
      index,
      step: e.step,
      time: e.time,
      layers: layersOfCosts(r).map(layerFrame),
      checkpoint: pathToFileURL(e.file).href,
    };
  }
}

export function openCheckpointRun(folder: string, id: string, events: RunEvents, costsOf: CostsOf, opts?: CheckpointRunOptions): CheckpointRun {
  return new CheckpointRun(folder, id, events, costsOf, opts);
}
