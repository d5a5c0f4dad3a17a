// The balance-training experiment (server/experiments/balance-training/run.py, `npm run
// experiment:training`) in its smoke form: --quick (one seed, a few steps, a tiny subset of
// Fashion-MNIST, a small RNN) runs to the end and writes its table and raw numbers. The numbers
// themselves are the full run's business (its README.md); this checks only that the one command
// works. Skipped, saying why, where no python3 with torch or no Fashion-MNIST idx files are there.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pythonWith } from '../support/python';

const ROOT = join(__dirname, '..', '..');
const SCRIPT = join(ROOT, 'server', 'experiments', 'balance-training', 'run.py');
const DATA = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

function pythonWithTorch(): string | undefined {
  return pythonWith('import torch, numpy');
}

describe('experiment:training (balance during training)', () => {
  const out = mkdtempSync(join(tmpdir(), 'synbal-experiment-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  it('runs --quick and writes its table, CSVs and balance logs', (t) => {
    const py = pythonWithTorch();
    if (!py) return t.skip('python3 with torch and numpy not found');
    if (!existsSync(join(DATA, 'train-images-idx3-ubyte.gz'))) return t.skip(`Fashion-MNIST not found in ${DATA} (Debian: dataset-fashion-mnist)`);
    execFileSync(py, [SCRIPT, '--quick', '--out', out, '--logs', join(out, 'logs')], { timeout: 120_000, stdio: 'pipe' });
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    assert.match(readme, /## Results: Fashion-MNIST/);
    assert.match(readme, /\| MLP \| sgd \| baseline \| 0\.\d+ ± /);
    assert.match(readme, /\| CNN \| adam \| every\d+ \| /);
    assert.match(readme, /Same function without noise: the largest \|output change\| after balancing is ([0-9.e-]+)/);
    const change = Number(/largest \|output change\| after balancing is ([0-9.e+-]+)/.exec(readme)![1]);
    assert.ok(change < 1e-9, `balanced RNN output moved by ${change}`);
    const runs = readFileSync(join(out, 'runs.csv'), 'utf8').trim().split('\n');
    assert.equal(runs.length, 1 + 2 * 3 * 4); // header + nets x optimisers x arms, one seed
    assert.ok(readFileSync(join(out, 'curves.csv'), 'utf8').split('\n').length > 25);
    assert.ok(readFileSync(join(out, 'rnn.csv'), 'utf8').split('\n').length > 6);
    const log = readFileSync(join(out, 'logs', 'mlp-sgd-every5.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(log.some((r) => r.balance && r.balance.deltaR >= 0), 'a balance event in the every-5 log');
  });
});
