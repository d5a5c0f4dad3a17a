// `npm run demo:train` / `node dist/demoTrain.js [--out DIR] [--steps N] [--log-every K]`:
// trains the demo MLP three ways into balance logs the monitor can open (demoRuns.ts).
// The bundle carries @tensorflow/tfjs (pure JS); @tensorflow/tfjs-node is used instead when
// it can be resolved from the working directory (much faster, never required).
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import * as tfjs from '@tensorflow/tfjs';
import { runDemo } from './demoRuns';

type Tf = typeof import('@tensorflow/tfjs');

const USAGE = 'usage: node dist/demoTrain.js [--out DIR] [--steps N] [--log-every K]\n';

function parseArgs(argv: string[]): { out: string; steps: number; logEvery: number } {
  const a = { out: join('.cache', 'demo-train'), steps: 2000, logEvery: 20 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const int = () => {
      const n = Number(value);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer, not ${JSON.stringify(value)}`);
      i++;
      return n;
    };
    if (flag === '--out' && value !== undefined) {
      a.out = value;
      i++;
    } else if (flag === '--steps') a.steps = int();
    else if (flag === '--log-every') a.logEvery = int();
    else throw new Error(`unknown argument ${JSON.stringify(flag)}\n${USAGE}`);
  }
  return a;
}

function loadTf(): { tf: Tf; backend: string } {
  try {
    // Resolved from the user's project at run time, never bundled.
    const req = createRequire(join(process.cwd(), 'package.json'));
    return { tf: req(req.resolve('@tensorflow/tfjs-node')) as Tf, backend: 'tfjs-node' };
  } catch {
    return { tf: tfjs, backend: 'tfjs (pure JavaScript)' };
  }
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const { tf, backend } = loadTf();
  await tf.setBackend(backend === 'tfjs-node' ? 'tensorflow' : 'cpu');
  const out = resolve(args.out);
  console.log(`demo:train on ${backend}: ${args.steps} steps per run, logging every ${args.logEvery}, into ${out}`);
  const started = Date.now();
  await runDemo(tf, { out, steps: args.steps, logEvery: args.logEvery, report: (l) => console.log(l) });
  console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s; open the *.jsonl logs with the training monitor`);
}

main().catch((e) => {
  process.stderr.write(`demo:train failed: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
