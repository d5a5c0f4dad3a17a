// The compute adapters' names and errors. The seam itself (ComputeBackend, the jobs, and the
// engine's single-threaded default) is the engine's: engine/computeBackend.ts.
export { ComputeCancelled, type ComputeBackend, type ProductJob, type ScaleJob } from '../engine/computeBackend';

export type BackendName = 'cpu' | 'torch' | 'onnxruntime' | 'tfjs';
export const BACKEND_NAMES: readonly BackendName[] = ['cpu', 'torch', 'onnxruntime', 'tfjs'];

/** What the user asks for (contract/settings.ts): `auto` is the fastest GPU backend that starts, else the CPU. */
export { DEVICE_SETTINGS, type DeviceSetting } from '../contract/settings';

/** A backend that cannot run here (library not installed, no such device): the message says why. */
export class BackendUnavailable extends Error {
  constructor(readonly backend: BackendName, reason: string) {
    super(`${backend} backend: ${reason}`);
    this.name = 'BackendUnavailable';
  }
}
