// The Python interpreter the torch-based tests run: SYNBAL_PYTHON, then python3, then Debian's
// /usr/bin/python3 (a python3 first on the PATH, e.g. pyenv's, may lack Debian's torch).
import { execFileSync } from 'node:child_process';

/** The first interpreter that can run `imports` (e.g. `import torch, numpy`), or undefined. */
export function pythonWith(imports: string): string | undefined {
  for (const py of [process.env.SYNBAL_PYTHON, 'python3', '/usr/bin/python3']) {
    if (!py) continue;
    try {
      execFileSync(py, ['-c', imports], { stdio: 'ignore', timeout: 60_000 });
      return py;
    } catch {
      // next
    }
  }
  return undefined;
}
