// The benchmark: for each example network, the time of one stats pass, of the fast solver and
// of the paper's schedule, and the peak memory, each network measured in its own process.
// Usage: node --expose-gc dist/bench.js [--only name,name]   (child mode: --one name)
import { writeFileSync } from 'node:fs';
import { CASES, caseNamed } from './cases';
import { CHILD_FLAG, measureInChild } from './isolate';
import { machineInfo } from './machine';
import { measureCase, type NetworkResult } from './measure';
import { renderReport, type Failure } from './report';

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
  for (const name of selectedNames()) {
    process.stderr.write(`measuring ${name} in a fresh process…\n`);
    const outcome = measureInChild(name);
    if (outcome.ok) results.push(outcome.result);
    else failures.push(outcome.failure);
  }
  const totalMs = performance.now() - started;
  process.stdout.write(`${renderReport(machine, results, failures, totalMs)}\n`);
  writeFileSync(RESULTS_FILE, `${JSON.stringify({ machine, totalMs, results, failures }, null, 2)}\n`);
  process.stderr.write(`results written to ${RESULTS_FILE}\n`);
  return failures.length === 0 ? 0 : 1;
}

const child = argValue(CHILD_FLAG);
if (child !== undefined) runChild(child);
else process.exitCode = runAll();
