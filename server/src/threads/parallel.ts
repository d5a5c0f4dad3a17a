// The fused cost kernel spread over CPU cores: worker threads take bands of rows of a matrix
// held in shared memory, the main thread takes one band too, then waits on a shared counter.
// Synchronous for callers, so the solvers stay plain functions. The same pool scales weights
// and reads large files. Outside the engine (which stays single-threaded and does no I/O):
// compute's CPU backend and formats/checkpoint.ts call in here.
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { costProducts, fused, type CostStorage } from '../engine/costStorage';
import { scaleRows } from '../engine/scaleRows';

export interface BandJob {
  ctrl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  float32: boolean;
  base: number;
  nC: number;
  r0: number;
  r1: number;
  kind: 0 | 1 | 2;
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  row: SharedArrayBuffer;
  col: SharedArrayBuffer;
  /** Each worker sums its band's column products into its own slice of col. */
  colOffset: number;
}

/** Part of a file read into shared memory by a worker. */
export interface ReadJob {
  ctrl: SharedArrayBuffer;
  path: string;
  fileOffset: number;
  length: number;
  target: SharedArrayBuffer;
  targetOffset: number;
}

/** Reads at least this large are split over the workers (page faults and copies in parallel). */
export const PARALLEL_READ_MIN_BYTES = 1 << 26;

/**
 * Reads [offset, offset + length) of a file into `target` (shared), split over the pool; false
 * when there is no pool to split over (the caller reads it itself).
 */
export function readParallel(path: string, offset: number, length: number, target: SharedArrayBuffer): boolean {
  if (disabled || length < PARALLEL_READ_MIN_BYTES) return false;
  const ws = workers();
  if (ws.length === 0) return false;
  const parts = ws.length + 1;
  const per = Math.ceil(length / parts / 4096) * 4096;
  const ctrl = new Int32Array(new SharedArrayBuffer(8));
  ctrl[0] = ws.length;
  ws.forEach((w, i) => {
    const start = Math.min(length, (i + 1) * per);
    const end = Math.min(length, (i + 2) * per);
    w.postMessage({ ctrl: ctrl.buffer as SharedArrayBuffer, path, fileOffset: offset + start, length: end - start, target, targetOffset: start } satisfies ReadJob);
  });
  const fd = openSync(path, 'r');
  try {
    const own = new Uint8Array(target, 0, Math.min(length, per));
    let done = 0;
    while (done < own.length) {
      const n = readSync(fd, own, done, own.length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  if (!waitZero(ctrl, 120_000)) {
    shutDown('a worker stopped answering');
    return false;
  }
  if (ctrl[1] !== 0) throw new Error(`${path}: unexpected end of file (wanted ${length} bytes at ${offset})`);
  return true;
}

/** Rows of a shared matrix scaled into another shared matrix by a worker. */
export interface ScaleJob {
  ctrl: SharedArrayBuffer;
  src: SharedArrayBuffer;
  dst: SharedArrayBuffer;
  float32: boolean;
  base: number;
  sa: number;
  nC: number;
  r0: number;
  r1: number;
  ft: SharedArrayBuffer;
  fs: SharedArrayBuffer;
}

/**
 * dst[row a] = src[row a] · ft[a] · fs[·] for a row-major block (stride sa), split over the
 * pool; false when it is not worth it or not possible (the caller scales on its own thread).
 */
export function scaleParallel(src: Float32Array | Float64Array, dst: Float32Array | Float64Array, base: number, sa: number, nT: number, nC: number, ft: Float64Array, fs: Float64Array): boolean {
  if (disabled || nT * nC < PARALLEL_MIN_ELEMENTS || !(src.buffer instanceof SharedArrayBuffer) || !(dst.buffer instanceof SharedArrayBuffer) || src.byteOffset !== 0 || dst.byteOffset !== 0) return false;
  const ws = workers();
  if (ws.length === 0) return false;
  const bands = ws.length + 1;
  const per = Math.ceil(nT / bands);
  const ctrl = new Int32Array(new SharedArrayBuffer(8));
  ctrl[0] = ws.length;
  const fts = shared(nT);
  fts.set(ft);
  const fss = shared(nC);
  fss.set(fs);
  ws.forEach((w, i) => {
    const job: ScaleJob = { ctrl: ctrl.buffer as SharedArrayBuffer, src: src.buffer as SharedArrayBuffer, dst: dst.buffer as SharedArrayBuffer, float32: src instanceof Float32Array, base, sa, nC, r0: Math.min(nT, (i + 1) * per), r1: Math.min(nT, (i + 2) * per), ft: fts.buffer as SharedArrayBuffer, fs: fss.buffer as SharedArrayBuffer };
    w.postMessage(job);
  });
  scaleRows(src, dst, base, sa, nC, 0, Math.min(nT, per), ft, fs);
  if (!waitZero(ctrl, 120_000) || ctrl[1] !== 0) {
    shutDown('a worker failed while scaling');
    scaleRows(src, dst, base, sa, nC, 0, nT, ft, fs);
  }
  return true;
}

/** Matrices smaller than this stay on one thread: the hand-off costs more than it saves. */
export const PARALLEL_MIN_ELEMENTS = 1 << 22;

let pool: Worker[] | undefined;
let disabled = process.env.SYNBAL_THREADS === '1';

function startWorker(): Worker {
  // Bundled: dist/computeWorker.js beside this bundle; from sources (tests), the .ts file
  // through tsx's require hook (a worker does not inherit the parent's loader).
  if (__filename.endsWith('.ts')) {
    return new Worker(`require('tsx/cjs'); require(${JSON.stringify(join(__dirname, 'parallelWorker.ts'))});`, { eval: true });
  }
  const file = join(__dirname, 'computeWorker.js');
  // Bundled into a program without the worker beside it: run on one thread.
  if (!existsSync(file)) throw new Error(`${file} is missing`);
  return new Worker(file);
}

/** Waits until the shared counter reaches zero; false when it did not within `ms`. */
function waitZero(ctrl: Int32Array, ms: number): boolean {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = Atomics.load(ctrl, 0);
    if (left === 0) return true;
    const rest = deadline - Date.now();
    if (rest <= 0) return false;
    Atomics.wait(ctrl, 0, left, rest);
  }
}

function shutDown(reason: string): void {
  disabled = true;
  for (const w of pool ?? []) void w.terminate();
  pool = [];
  process.emitWarning(`synbal: compute threads off (${reason}); continuing on one thread`);
}

function workers(): Worker[] {
  if (!pool) {
    // From sources (tsx), workers load through a require hook that can stall behind a blocked
    // main thread: threads there are opt-in (SYNBAL_THREADS); the bundles use every core.
    const fromSources = __filename.endsWith('.ts');
    const wanted = Number(process.env.SYNBAL_THREADS) || (fromSources ? 1 : availableParallelism());
    const n = Math.max(0, Math.min(wanted, 16) - 1);
    pool = [];
    try {
      for (let i = 0; i < n; i++) {
        const w = startWorker();
        w.unref();
        pool.push(w);
      }
      // A worker that cannot load would leave a caller waiting forever: prove each one runs
      // an empty band before any real work is handed out.
      if (n > 0) {
        const ctrl = new Int32Array(new SharedArrayBuffer(8));
        ctrl[0] = n;
        const empty = new SharedArrayBuffer(8);
        for (const w of pool) w.postMessage({ ctrl: ctrl.buffer, data: empty, float32: false, base: 0, nC: 0, r0: 0, r1: 0, kind: 0, x: empty, y: empty, row: empty, col: empty, colOffset: 0 } satisfies BandJob);
        if (!waitZero(ctrl, 20_000)) shutDown('workers did not start');
      }
    } catch (e) {
      shutDown((e as Error).message);
    }
  }
  return pool;
}

export function threadCount(): number {
  return disabled ? 1 : workers().length + 1;
}

const shared = (n: number) => new Float64Array(new SharedArrayBuffer(n * 8));

/** Whether a matrix can be split over threads: shared storage, large enough, threads available. */
export function canParallelize(data: Float32Array | Float64Array, elements: number): boolean {
  return !disabled && elements >= PARALLEL_MIN_ELEMENTS && data.buffer instanceof SharedArrayBuffer && workers().length > 0;
}

/** fused() over rows [0, nR) of data, split over the pool; same results up to summation order. */
export function fusedParallel(data: Float32Array | Float64Array, base: number, nR: number, nC: number, kind: 0 | 1 | 2, x: Float64Array, y: Float64Array, row: Float64Array, col: Float64Array): void {
  const ws = workers();
  const bands = ws.length + 1;
  const ctrl = new Int32Array(new SharedArrayBuffer(8));
  const xs = shared(nC);
  xs.set(x.subarray(0, nC));
  const ys = shared(nR);
  ys.set(y.subarray(0, nR));
  const rows = shared(nR);
  const cols = shared(nC * bands);
  const per = Math.ceil(nR / bands / 4) * 4;
  ctrl[0] = ws.length;
  const elementOffset = data.byteOffset / data.BYTES_PER_ELEMENT;
  ws.forEach((w, i) => {
    const r0 = Math.min(nR, (i + 1) * per);
    const r1 = Math.min(nR, (i + 2) * per);
    const job: BandJob = {
      ctrl: ctrl.buffer as SharedArrayBuffer,
      data: data.buffer as SharedArrayBuffer,
      float32: data instanceof Float32Array,
      base: elementOffset + base,
      nC,
      r0,
      r1,
      kind,
      x: xs.buffer as SharedArrayBuffer,
      y: ys.buffer as SharedArrayBuffer,
      row: rows.buffer as SharedArrayBuffer,
      col: cols.buffer as SharedArrayBuffer,
      colOffset: (i + 1) * nC,
    };
    w.postMessage(job);
  });
  const r1 = Math.min(nR, per);
  fused(data, base, r1, nC, kind, xs, ys, rows, cols.subarray(0, nC));
  // A band takes about as long as the main thread's; far longer means a worker is gone.
  if (!waitZero(ctrl, 120_000) || ctrl[1] !== 0) {
    shutDown(ctrl[1] !== 0 ? 'a worker failed' : 'a worker stopped answering');
    fused(data, base, nR, nC, kind, x, y, row, col);
    return;
  }
  row.set(rows);
  col.fill(0, 0, nC);
  for (let b = 0; b < bands; b++) {
    const part = cols.subarray(b * nC, (b + 1) * nC);
    for (let c = 0; c < nC; c++) col[c] += part[c];
  }
}

/** costProducts (engine/costStorage.ts) with large shared blocks split over the pool. */
export function costProductsThreaded(c: CostStorage, x: Float64Array | null, y: Float64Array | null, row: Float64Array, col: Float64Array): void {
  costProducts(c, x, y, row, col, canParallelize(c.data, c.nT * c.nS) ? fusedParallel : fused);
}
