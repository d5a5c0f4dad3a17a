// From an opened network to the engine's problem: the regularizer a request names, compiled
// with errors that name the file.
import { compile, type Problem } from '../engine/compile';
import type { Network } from '../engine/network';
import { lp, parseRegularizer, type Regularizer } from '../engine/regularizer';
import type { ComputeBackend } from '../compute/backend';
import { cpuBackend } from '../compute/cpuBackend';
import { aboutFile } from '../errors/fileError';
import type { AnalysisOptions } from './requests';

export function regularizerOf(options: Pick<AnalysisOptions, 'p' | 'regularizer'>): Regularizer {
  return options.regularizer !== undefined ? parseRegularizer(options.regularizer) : lp(options.p);
}

export function compileFor(path: string, network: Network, regularizer: Regularizer, compute?: ComputeBackend): Problem {
  // Without a named backend the threaded CPU one: the engine's own default is single-threaded.
  return aboutFile(path, () => compile(network, regularizer, compute ?? cpuBackend));
}
