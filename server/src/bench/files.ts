// The model-file benchmark: `synbal check` on 1 GB files against the time to read them once,
// and `synbal balance` end to end on the 70M-parameter MLP as ONNX against its check. Files
// are generated at bench time in a scratch folder; every case runs in its own process.
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli';
import { FORMATS } from '../formats/registry';
import { writeMlpOnnx, writeMlpSafetensors, type MlpFileSpec } from './bigFiles';
import { median, settle } from './timing';

export const FILE_CHILD_FLAG = '--file';
export const SCRATCH = join(tmpdir(), 'synbal-bench-files');

const GB_SIZES = [1024, 8192, 8192, 8192, 8192, 8192, 10];
const WIDE_SIZES = [784, 4096, 4096, 4096, 4096, 4096, 10];

export interface FileCase {
  name: string;
  file: string;
  format: 'safetensors' | 'onnx';
  spec: MlpFileSpec;
  /** Also time `synbal balance --verify` (the end-to-end target is ≤ 3× the check). */
  balance: boolean;
  /** The check ≤ 3× read and RSS targets apply (the 1 GB files). */
  checkTarget: boolean;
}

/** Fresh processes per case: the medians are over these, and each peak RSS is one run's. */
export const FILE_RUNS = 3;

export const FILE_CASES: readonly FileCase[] = [
  { name: 'safetensors-1gb', file: 'mlp-1gb.safetensors', format: 'safetensors', spec: { sizes: GB_SIZES, seed: 7 }, balance: false, checkTarget: true },
  { name: 'onnx-1gb', file: 'mlp-1gb.onnx', format: 'onnx', spec: { sizes: GB_SIZES, seed: 7 }, balance: false, checkTarget: true },
  { name: 'onnx-70m', file: 'mlp-70m.onnx', format: 'onnx', spec: { sizes: WIDE_SIZES, seed: 7 }, balance: true, checkTarget: false },
];

export interface FileResult {
  name: string;
  fileBytes: number;
  readMs: number;
  checkMs: number;
  checkExit: number;
  balanceMs?: number;
  balanceVerifyMs?: number;
  balanceSummary?: string;
  /** Peak RSS of the check process. */
  peakRssBytes: number;
  balanceRssBytes?: number;
}

export function available(c: FileCase): boolean {
  return FORMATS.some((f) => f.id === c.format);
}

export function generate(c: FileCase): string {
  mkdirSync(SCRATCH, { recursive: true });
  const path = join(SCRATCH, c.file);
  if (c.format === 'onnx') writeMlpOnnx(path, c.spec);
  else writeMlpSafetensors(path, c.spec);
  return path;
}

/** Reads the whole file once through one reused 64 MiB buffer: the floor for any reader. */
function readOnce(path: string): number {
  const buf = Buffer.allocUnsafe(64 * 2 ** 20);
  const fd = openSync(path, 'r');
  const t0 = performance.now();
  let pos = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) break;
    pos += n;
  }
  closeSync(fd);
  return performance.now() - t0;
}

async function runCli(args: string[]): Promise<{ ms: number; code: number; out: string }> {
  let out = '';
  const t0 = performance.now();
  const code = await main(args, { out: (t) => (out += t), err: (t) => process.stderr.write(t) });
  return { ms: performance.now() - t0, code, out };
}

/**
 * One run in this (fresh) process: a read and a check, whose peak RSS is the check's; for the
 * balance cases a second fresh process balances (`mode` 'balance').
 */
export async function measureFile(c: FileCase, mode: 'check' | 'balance'): Promise<FileResult> {
  const path = join(SCRATCH, c.file);
  const result: FileResult = { name: c.name, fileBytes: statSync(path).size, readMs: 0, checkMs: 0, checkExit: -1, peakRssBytes: 0 };
  if (mode === 'check') {
    result.readMs = readOnce(path);
    settle();
    const check = await runCli(['check', path, '--activation', 'relu', '--format', 'json']);
    result.checkMs = check.ms;
    result.checkExit = check.code;
    result.peakRssBytes = process.resourceUsage().maxRSS * 1024;
    return result;
  }
  const out = join(SCRATCH, `balanced-${c.file}`);
  for (const verify of [false, true]) {
    settle();
    rmSync(out, { force: true });
    const r = await runCli(['balance', path, '--activation', 'relu', ...(verify ? ['--verify'] : []), '-o', out, '--format', 'json']);
    if (r.code !== 0) throw new Error(`balance failed with exit ${r.code}`);
    const doc = JSON.parse(r.out);
    if (verify) {
      result.balanceVerifyMs = r.ms;
      result.balanceSummary = `${doc.method}, ${doc.iterations} iterations; --verify (onnxruntime): largest relative output difference ${doc.verification?.maxRelative?.toExponential(1) ?? '-'}`;
    } else result.balanceMs = r.ms;
  }
  rmSync(out, { force: true });
  result.balanceRssBytes = process.resourceUsage().maxRSS * 1024;
  return result;
}

/** Medians over runs; the largest peak RSS. */
export function combine(checks: FileResult[], balances: FileResult[]): FileResult {
  const m = (rs: FileResult[], k: 'readMs' | 'checkMs' | 'balanceMs' | 'balanceVerifyMs') => median(rs.map((r) => r[k] ?? NaN));
  const out: FileResult = { ...checks[0], readMs: m(checks, 'readMs'), checkMs: m(checks, 'checkMs'), peakRssBytes: Math.max(...checks.map((r) => r.peakRssBytes)) };
  if (balances.length) {
    Object.assign(out, { balanceMs: m(balances, 'balanceMs'), balanceVerifyMs: m(balances, 'balanceVerifyMs'), balanceSummary: balances[0].balanceSummary, balanceRssBytes: Math.max(...balances.map((r) => r.balanceRssBytes ?? 0)) });
  }
  return out;
}

export const CHECK_READ_MAX = 3;
export const CHECK_RSS_ALLOWANCE = 200 * 2 ** 20;
export const BALANCE_CHECK_MAX = 3;

export function renderFiles(results: FileResult[], skipped: string[]): string {
  const mb = (b: number) => (b / 2 ** 20).toFixed(0);
  const mark = (ok: boolean) => (ok ? '✓' : '✗');
  const lines = [
    '| file | MB | read ms | check ms | check/read | check peak RSS MB | RSS ≤ file + 200 MB | balance ms | balance/check | balance --verify ms | balance peak RSS MB |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    const ratio = r.checkMs / r.readMs;
    const rssOk = r.peakRssBytes <= r.fileBytes + CHECK_RSS_ALLOWANCE;
    const bal =
      r.balanceMs === undefined
        ? ['-', '-', '-', '-']
        : [r.balanceMs.toFixed(0), `${(r.balanceMs / r.checkMs).toFixed(2)} ${mark(r.balanceMs / r.checkMs <= BALANCE_CHECK_MAX)}`, (r.balanceVerifyMs ?? NaN).toFixed(0), mb(r.balanceRssBytes ?? 0)];
    const target = FILE_CASES.find((c) => c.name === r.name)?.checkTarget ?? false;
    const ratioCell = target ? `${ratio.toFixed(2)} ${mark(ratio <= CHECK_READ_MAX)}` : ratio.toFixed(2);
    lines.push(`| ${r.name} | ${mb(r.fileBytes)} | ${r.readMs.toFixed(0)} | ${r.checkMs.toFixed(0)} | ${ratioCell} | ${mb(r.peakRssBytes)} | ${target ? mark(rssOk) : '-'} | ${bal.join(' | ')} |`);
  }
  for (const s of skipped) lines.push(`| ${s} | skipped: no reader for its format yet | | | | | | | | | |`);
  lines.push(
    '',
    `- Each figure is the median of ${FILE_RUNS} fresh processes that read the file once, then check it; balancing runs in ${FILE_RUNS} other fresh processes.`,
    '- read ms: reading the whole file once (64 MiB reads, page cache warm); check ms: `synbal check FILE --activation relu --format json` in-process; target ≤ 3× the read for the 1 GB files.',
    '- check peak RSS: the largest of the check processes\' peaks; target ≤ file size + 200 MB for the 1 GB files.',
    '- balance ms: `synbal balance FILE --activation relu -o OUT` end to end (read, solve, write the patched copy, re-read it), target ≤ 3× its check; balance --verify ms adds running both files in onnxruntime (two sessions) before the checked copy is renamed into place.',
  );
  for (const r of results) if (r.balanceSummary) lines.push(`- ${r.name} balance: ${r.balanceSummary}`);
  return lines.join('\n');
}
