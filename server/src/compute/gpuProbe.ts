// Is there any GPU here at all? Answered from the file system, without starting Python: on a
// machine with none, `auto` would otherwise spawn an interpreter and import torch (1.5–3 s)
// only to learn that, on every large balance.
import { existsSync } from 'node:fs';

/** Set to 1 to try the GPU backends even when no device node is found (containers that hide them). */
export const ASSUME_GPU_ENV = 'SYNBAL_ASSUME_GPU';

export interface GpuHint {
  found: boolean;
  /** What was found, or what was looked for. */
  detail: string;
}

export function gpuHint(exists: (p: string) => boolean = existsSync, platform = process.platform, arch = process.arch): GpuHint {
  if (process.env[ASSUME_GPU_ENV] === '1') return { found: true, detail: `${ASSUME_GPU_ENV}=1` };
  if (platform === 'darwin') return arch === 'arm64' ? { found: true, detail: 'Apple silicon (MPS)' } : { found: false, detail: 'an Intel Mac (no MPS)' };
  // Windows has no device nodes to look at: let the backends find out.
  if (platform === 'win32') return { found: true, detail: 'Windows (not probed)' };
  const nodes = ['/dev/nvidiactl', '/dev/nvidia0', '/proc/driver/nvidia/version', '/dev/kfd', '/dev/dxg'];
  const hit = nodes.find((p) => exists(p));
  return hit ? { found: true, detail: hit } : { found: false, detail: `none of ${nodes.join(', ')}` };
}
