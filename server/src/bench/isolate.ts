// Runs one network's measurements in a fresh Node process (this same script with --one), so
// that each peak RSS counts only that network and not what earlier networks left behind.
import { spawnSync } from 'node:child_process';
import type { NetworkResult } from './measure';
import type { Failure } from './report';

export const CHILD_FLAG = '--one';

export type Outcome = { ok: true; result: NetworkResult } | { ok: false; failure: Failure };

/** The child writes its progress to stderr (passed through) and one JSON line to stdout. */
export function measureInChild(name: string): Outcome {
  const script = process.argv[1];
  const child = spawnSync(process.execPath, [...process.execArgv, script, CHILD_FLAG, name], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  if (child.error) return { ok: false, failure: { name, error: child.error.message } };
  if (child.status !== 0) {
    const how = child.signal ? `signal ${child.signal}` : `exit code ${child.status}`;
    return { ok: false, failure: { name, error: `child process ended with ${how}` } };
  }
  const lastLine = child.stdout.trim().split('\n').pop() ?? '';
  try {
    return { ok: true, result: JSON.parse(lastLine) as NetworkResult };
  } catch {
    return { ok: false, failure: { name, error: `unreadable child output: ${lastLine.slice(0, 200)}` } };
  }
}
