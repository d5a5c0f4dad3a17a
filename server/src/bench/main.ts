// The benchmark: for each example network, the time of one stats pass, of the fast solver and
// of the paper's schedule, and the peak memory, each network measured in its own process.
// Usage: node --expose-gc dist/bench.js [--only name,name | --files | --backends] [--big]
//   (child modes: --one name, --file name, --backend-one model backend)
//   --backends: only the compute backends (cpu, torch, onnxruntime, tfjs) on the 70M MLP;
//   --big adds the 1B-parameter MLP where the free memory allows. SYNBAL_BENCH_PYTHON picks
//   the interpreter for torch (default python3).
import { writeFileSync } from 'node:fs';
import { CASES, caseNamed } from './cases';
import { CHILD_FLAG, measureInChild } from './isolate';
import { machineInfo } from './machine';
import { measureCase, type NetworkResult } from './measure';
import { renderReport, type Failure } from './report';
import { FILE_CASES, FILE_CHILD_FLAG, FILE_RUNS, SCRATCH, available, combine, generate, measureFile, renderFiles, type FileResult } from './files';
import { rmSync } from 'node:fs';
import { measureLspLatency } from './lspLatency';
import { spawnSync } from 'node:child_process';
import { BACKEND_CHILD_FLAG, measureBackend, renderBackends, runBackendBench, type BackendBench } from './backends';
import type { BackendName } from '../compute/backend';

const RESULTS_FILE = 'bench-results.json';

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function runChild(name: string): void {
  const result = measureCase(caseNamed(name));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function selectedNames(): string[] {
  const only = argValue('--only');
  if (!only) return CASES.map((c) => c.name);
  return only.split(',').map((n) => caseNamed(n.trim()).name);
}

function runAll(): number {
  if (!(globalThis as { gc?: unknown }).gc) process.stderr.write('note: run with --expose-gc so that garbage is collected between timed runs\n');
  const machine = machineInfo();
  const started = performance.now();
  const results: NetworkResult[] = [];
  const failures: Failure[] = [];
  const backendsOnly = process.argv.includes('--backends');
  for (const name of process.argv.includes('--files') || backendsOnly ? [] : selectedNames()) {
    process.stderr.write(`measuring ${name} in a fresh process…\n`);
    const outcome = measureInChild(name);
    if (outcome.ok) results.push(outcome.result);
    else failures.push(outcome.failure);
  }
  const files = argValue('--only') || backendsOnly ? { results: [], skipped: [] } : runFiles(failures);
  const backends: BackendBench | undefined = argValue('--only') || process.argv.includes('--files') ? undefined : runBackendBench(process.argv.includes('--big'));
  const latency = argValue('--only') || process.argv.includes('--files') || backendsOnly ? undefined : (process.stderr.write('measuring the language server while it works…\n'), measureLspLatency());
  const totalMs = performance.now() - started;
  if (backendsOnly) {
    // Its own results file: a partial run must not replace the full bench's.
    process.stdout.write(`### Compute backends (${machine.cpu}, ${machine.cores} cores)\n\n${renderBackends(backends!)}\n`);
    writeFileSync('bench-backends.json', `${JSON.stringify({ machine, totalMs, backends: backends!.rows, skipped: backends!.skipped }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`${renderReport(machine, results, failures, totalMs)}\n`);
  if (files.results.length || files.skipped.length) process.stdout.write(`\n### Model files\n\n${renderFiles(files.results, files.skipped)}\n`);
  if (latency) process.stdout.write(`\n### Language server latency\n\n${latency}\n`);
  if (backends) process.stdout.write(`\n### Compute backends\n\n${renderBackends(backends)}\n`);
  writeFileSync(RESULTS_FILE, `${JSON.stringify({ machine, totalMs, results, files: files.results, backends: backends?.rows, failures }, null, 2)}\n`);
  process.stderr.write(`results written to ${RESULTS_FILE}\n`);
  return failures.length === 0 ? 0 : 1;
}

function fileChild(name: string, mode: 'check' | 'balance', k: number): FileResult {
  process.stderr.write(`${mode} ${name} in a fresh process (${k + 1}/${FILE_RUNS})…\n`);
  const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1], FILE_CHILD_FLAG, name, mode], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 2 ** 24 });
  const last = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0) throw new Error(`${name} ${mode}: exit ${child.status}: ${last.slice(0, 200)}`);
  return JSON.parse(last) as FileResult;
}

/** Generates each model file, measures it in fresh processes, and removes it. */
function runFiles(failures: Failure[]): { results: FileResult[]; skipped: string[] } {
  const results: FileResult[] = [];
  const skipped: string[] = [];
  for (const c of FILE_CASES) {
    if (!available(c)) {
      skipped.push(c.name);
      continue;
    }
    process.stderr.write(`writing ${c.file}…\n`);
    generate(c);
    const checks: FileResult[] = [];
    const balances: FileResult[] = [];
    try {
      for (let k = 0; k < FILE_RUNS; k++) checks.push(fileChild(c.name, 'check', k));
      if (c.balance) for (let k = 0; k < FILE_RUNS; k++) balances.push(fileChild(c.name, 'balance', k));
      results.push(combine(checks, balances));
    } catch (e) {
      failures.push({ name: c.name, error: (e as Error).message });
    }
  }
  rmSync(SCRATCH, { recursive: true, force: true });
  return { results, skipped };
}

const child = argValue(CHILD_FLAG);
const fileCase = argValue(FILE_CHILD_FLAG);
const backendModel = argValue(BACKEND_CHILD_FLAG);
if (backendModel !== undefined) {
  try {
    process.stdout.write(`${JSON.stringify(measureBackend(backendModel, argValue(backendModel) as BackendName))}\n`);
  } catch (e) {
    process.stderr.write(`cannot run: ${(e as Error).message.split('\n')[0]}\n`);
    process.exitCode = 1;
  }
}
else if (child !== undefined) runChild(child);
else if (fileCase !== undefined) {
  const mode = argValue(fileCase) === 'balance' ? 'balance' : 'check';
  void measureFile(FILE_CASES.find((c) => c.name === fileCase)!, mode).then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
}
else process.exitCode = runAll();
