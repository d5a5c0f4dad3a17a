// Opening a model file as the engine's network: the reader its bytes call for, then that
// format's network builder; read again when the file changed while it was read (a training run
// saving it).
import type { Network } from '../engine/network';
import { ChangedWhileReading } from '../errors/fileError';
import { assertUnchanged, type Checkpoint } from '../formats/core/checkpoint';
import { networkOf, openModel, type ModelFormat } from '../formats/registry';

export interface OpenedNetwork {
  format: ModelFormat;
  checkpoint: Checkpoint;
  network: Network;
  /** What the reader tolerated and how the topology was found. */
  notes: string[];
}

export interface OpenOptions {
  /** Activation for hidden layers whose file states none (a setting); none by default. */
  activation?: string;
  /** Tries when the file keeps changing (default 1: the caller retries, e.g. on a timer). */
  attempts?: number;
}

/** How a use case opens files; tests and benchmarks substitute their own. */
export type NetworkOpener = (path: string, activation: string) => OpenedNetwork;

export function openNetworkFile(path: string, opts: OpenOptions = {}): OpenedNetwork {
  const attempts = opts.attempts ?? 1;
  for (let attempt = 1; ; attempt++) {
    try {
      const { format, checkpoint } = openModel(path);
      const built = networkOf(checkpoint, { defaultActivation: opts.activation || undefined });
      // The weights are read after the header: a file rewritten in between is read again.
      assertUnchanged(checkpoint);
      return { format, checkpoint, network: built.network, notes: [...checkpoint.warnings, ...built.notes] };
    } catch (e) {
      if (!(e instanceof ChangedWhileReading) || attempt >= attempts) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250 * attempt);
    }
  }
}

/** The opener of the language server's worker: one try per job (its scheduler retries once a file settles). */
export const openNetwork: NetworkOpener = (path, activation) => openNetworkFile(path, { activation });
