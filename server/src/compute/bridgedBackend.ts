// A backend whose kernels run elsewhere (a torch process, an onnxruntime session) behind a
// SyncBridge. Cost blocks are uploaded once, through a file of raw little-endian arrays;
// each later call sends only the vectors and gets back the row and column sums.
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CostStorage } from '../engine/costStorage';
import type { BackendName, ComputeBackend, ProductJob, ScaleJob } from './backend';
import { cpuBackend } from './cpuBackend';
import type { BlockDtype, HostInfo, UploadBlock } from './hostProtocol';
import type { SyncBridge } from './syncBridge';

/** Shared memory where there is some (no disk write for a gigabyte of weights), else the temp folder. */
function scratchRoot(): string {
  return process.platform === 'linux' && existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

const WRITE_CHUNK = 1 << 28;

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) {
    const n = writeSync(fd, bytes, off, Math.min(WRITE_CHUNK, bytes.length - off));
    off += n;
  }
}

function readAll(fd: number, into: Uint8Array, what: string): void {
  for (let off = 0; off < into.length; ) {
    const n = readSync(fd, into, off, Math.min(WRITE_CHUNK, into.length - off), off);
    if (n === 0) throw new Error(`${what}: the device wrote ${off} of ${into.length} bytes`);
    off += n;
  }
}

function bytesOf(a: Float32Array | Float64Array, start: number, count: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset + start * a.BYTES_PER_ELEMENT, count * a.BYTES_PER_ELEMENT);
}

/** The array an upload sends for a cost storage, and how the device should read it. */
function uploadPlan(c: CostStorage, id: number, keep: boolean): { block: Omit<UploadBlock, 'offset'>; bytes: Uint8Array } {
  const dtype: BlockDtype = c.data instanceof Float32Array ? 'float32' : 'float64';
  const n = c.nT * c.nS;
  if (c.kind === 'matrix') return { block: { id, kind: 'matrix', p: 1, rows: c.nT, cols: c.nS, dtype, transposed: false, keep: false }, bytes: bytesOf(c.data, 0, n) };
  const transposed = c.sb !== 1;
  return {
    block: { id, kind: 'weights', p: c.p, rows: transposed ? c.nS : c.nT, cols: transposed ? c.nT : c.nS, dtype, transposed, keep: keep && !transposed },
    bytes: bytesOf(c.data, c.base, n),
  };
}

export class BridgedBackend implements ComputeBackend {
  readonly device: string;
  readonly description: string;
  readonly pid: number | undefined;
  private readonly ids = new Map<CostStorage, number>();
  private nextId = 1;
  private readonly dir: string;
  private disposed = false;

  constructor(
    readonly name: BackendName,
    private readonly bridge: SyncBridge,
    info: HostInfo,
    /** Scale resident weights on the device (the host can, and it was asked to). */
    private readonly scaleOnDevice: boolean,
  ) {
    this.device = info.device;
    this.description = info.description;
    this.pid = info.pid;
    this.dir = mkdtempSync(join(scratchRoot(), 'synbal-compute-'));
  }

  /** False once closed or once its worker process was stopped (a cancelled request). */
  get alive(): boolean {
    return !this.disposed && this.bridge.alive;
  }

  private get label(): string {
    return `${this.name} backend (${this.device})`;
  }

  load(costs: readonly CostStorage[]): void {
    this.live();
    const wanted = new Set(costs);
    if ([...this.ids.keys()].some((c) => !wanted.has(c))) {
      // One model at a time on the device: a new problem replaces the last one's blocks.
      this.bridge.call({ op: 'reset' });
      this.ids.clear();
    }
    this.upload(costs.filter((c) => !this.ids.has(c)));
  }

  private upload(costs: readonly CostStorage[]): void {
    if (costs.length === 0) return;
    const file = join(this.dir, `upload-${this.nextId}.bin`);
    const blocks: UploadBlock[] = [];
    const fd = openSync(file, 'w');
    try {
      let offset = 0;
      for (const c of costs) {
        const id = this.nextId++;
        const { block, bytes } = uploadPlan(c, id, this.scaleOnDevice);
        writeAll(fd, bytes);
        blocks.push({ ...block, offset });
        offset += bytes.length;
      }
    } finally {
      closeSync(fd);
    }
    try {
      this.bridge.call({ op: 'upload', file, blocks });
    } finally {
      rmSync(file, { force: true });
    }
    costs.forEach((c, i) => this.ids.set(c, blocks[i].id));
  }

  products(jobs: readonly ProductJob[]): void {
    this.live();
    this.upload([...new Set(jobs.map((j) => j.cost).filter((c) => !this.ids.has(c)))]);
    let n = 0;
    for (const j of jobs) n += (j.x ? j.cost.nS : 0) + (j.y ? j.cost.nT : 0);
    const payload = new Float64Array(n);
    let pos = 0;
    for (const j of jobs) {
      if (j.x) payload.set(j.x.subarray(0, j.cost.nS), pos), (pos += j.cost.nS);
      if (j.y) payload.set(j.y.subarray(0, j.cost.nT), pos), (pos += j.cost.nT);
    }
    const reply = this.bridge.call({ op: 'products', jobs: jobs.map((j) => ({ id: this.ids.get(j.cost)!, x: j.x !== null, y: j.y !== null })), payload });
    const out = reply.payload ?? new Float64Array(0);
    let wanted = 0;
    for (const j of jobs) wanted += (j.x ? j.cost.nT : 0) + (j.y ? j.cost.nS : 0);
    if (out.length !== wanted) throw new Error(`${this.label}: ${out.length} values came back for ${wanted} wanted`);
    pos = 0;
    for (const j of jobs) {
      if (j.x) j.row.set(out.subarray(pos, (pos += j.cost.nT)));
      if (j.y) j.col.set(out.subarray(pos, (pos += j.cost.nS)));
    }
  }

  scale(job: ScaleJob): void {
    this.live();
    const c = job.cost;
    const id = c && this.ids.get(c);
    const resident = this.scaleOnDevice && id !== undefined && c!.kind === 'weights' && c!.sb === 1 && c!.data === job.src && c!.base === job.base && c!.sa === job.sa && job.sa === job.nC;
    if (!resident || job.src.constructor !== job.dst.constructor) {
      cpuBackend.scale(job);
      return;
    }
    const file = join(this.dir, `scaled-${id}.bin`);
    const payload = new Float64Array(job.nT + job.nC);
    payload.set(job.ft.subarray(0, job.nT));
    payload.set(job.fs.subarray(0, job.nC), job.nT);
    try {
      this.bridge.call({ op: 'scale', id, file, payload });
      const fd = openSync(file, 'r');
      try {
        readAll(fd, bytesOf(job.dst, job.base, job.nT * job.nC), `${this.label} scaling`);
      } finally {
        closeSync(fd);
      }
    } finally {
      rmSync(file, { force: true });
    }
  }

  setCancel(cancelled: (() => boolean) | undefined): void {
    this.bridge.cancelled = cancelled;
  }

  /** Holds the worker busy for a while (diagnostics; the cancellation tests use it). */
  wait(seconds: number): void {
    this.live();
    this.bridge.call({ op: 'wait', seconds });
  }

  private live(): void {
    if (this.disposed) throw new Error(`${this.label}: used after it was closed`);
  }

  /** At process exit (no waiting possible): kills the worker process outright and removes the scratch folder. */
  abandon(): void {
    if (this.pid) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ids.clear();
    this.bridge.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
