// Never a silent blend (server/src/app/writeChecked.ts, formats/core/safeWrite.ts, targetLock.ts,
// formats/safetensors/sharded.ts): a checkpoint rewritten while it is balanced stops the write
// with a 'changed' FileError; a sharded set killed mid-write still reads as one consistent set
// and the next run tidies it; a second writer of one file is refused, naming the first; what
// killed runs leave beside a target is removed by the next write.
//
// The kill tests run the CLI in a child process with SYNBAL_TEST_PAUSE=<point> (safeWrite.ts
// `testPause`: the child prints `synbal-paused <point>` and waits), then SIGKILL it there.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../server/src/cli';
import { Workbench } from '../../server/src/app/balance';
import { openNetwork, openNetworkFile } from '../../server/src/app/openNetwork';
import { compileFor } from '../../server/src/app/problem';
import { writeChecked } from '../../server/src/app/writeChecked';
import { balance } from '../../server/src/engine/balance';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { lp } from '../../server/src/engine/regularizer';
import { FileError } from '../../server/src/errors/fileError';
import { failureOf } from '../../server/src/lsp/workerMain';
import { readRange } from '../../server/src/formats/core/checkpoint';
import { lockPathFor } from '../../server/src/formats/core/targetLock';
import { safetensorsIndexFormat } from '../../server/src/formats/safetensors/sharded';
import { scratchDir } from '../support/scratch';

const ROOT = join(__dirname, '..', '..');
const MODELS = join(ROOT, 'test', 'fixtures', 'models');
const INDEX = 'cnn_bn_sharded.safetensors.index.json';
const SHARDS = ['cnn_bn_sharded-00001-of-00002.safetensors', 'cnn_bn_sharded-00002-of-00002.safetensors'];

function copySet(): string {
  const dir = scratchDir('synbal-commit-');
  for (const f of [INDEX, ...SHARDS]) copyFileSync(join(MODELS, f), join(dir, f));
  return join(dir, INDEX);
}

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

/** Every tensor's bytes of the set an index names, by name. */
function tensorBytes(index: string): Map<string, Buffer> {
  const cp = safetensorsIndexFormat.open(index);
  return new Map(cp.tensors.map((t) => [t.name, readRange(t.file, t.offset, t.byteLength)]));
}

function sameTensors(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k)?.equals(v));
}

/** The CLI in a child process, paused at `point`; resolves once it is there. */
function startPaused(args: string[], point: string, pauseMs = 60_000): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'server', 'src', 'bin', 'synbal.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, SYNBAL_TEST_PAUSE: point, SYNBAL_TEST_PAUSE_MS: String(pauseMs) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes(`synbal-paused ${point}`)) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`the child exited (${code}) before ${point}: ${err}`)));
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
}

/** Rewrites bytes of a file in place, keeping its size and putting its mtime back. */
function rewriteKeepingStamp(path: string, offset: number, bytes: Buffer): void {
  const before = statSync(path);
  // `touch -r` puts the exact timestamps back (utimensat, nanoseconds: node's utimes takes a
  // double of seconds and loses the sub-millisecond part).
  const ref = `${path}.stamp`;
  writeFileSync(ref, '');
  assert.equal(spawnSync('touch', ['-r', path, ref]).status, 0);
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
  assert.equal(spawnSync('touch', ['-r', ref, path]).status, 0);
  rmSync(ref);
  assert.equal(statSync(path).mtimeMs, before.mtimeMs);
  assert.equal(statSync(path).size, before.size);
}

/** The reference: the same set balanced once, undisturbed. */
async function balancedReference(): Promise<Map<string, Buffer>> {
  const index = copySet();
  assert.equal((await run(['balance', index, '--in-place', '--activation', 'relu'])).code, 0);
  return tensorBytes(index);
}

describe('a checkpoint rewritten while it is balanced', () => {
  for (const verify of [false, true]) {
    it(`stops with a 'changed' FileError naming the file, writes nothing and keeps no .bak (${verify ? 'checked copy' : 'direct write'})`, async () => {
      const dir = scratchDir('synbal-commit-');
      const path = join(dir, 'mlp_relu.safetensors');
      copyFileSync(join(MODELS, 'mlp_relu.safetensors'), path);
      const opened = openNetworkFile(path, { activation: 'relu' });
      const problem = compileFor(path, opened.network, lp(2));
      const changed = scaledTensors(problem, balance(problem, { tolerance: 1e-9 }).x);
      // A training run saves over it: same size, mtime put back, other weights.
      const read = opened.checkpoint.tensors.find((t) => t.readDigest !== undefined)!;
      rewriteKeepingStamp(path, read.offset, Buffer.alloc(8, 0x3f));
      const saved = readFileSync(path);
      await assert.rejects(writeChecked(opened, changed, path, { backup: true, verify: { enabled: verify, force: true, requireCheck: false }, activation: 'relu' }), (e: Error) => {
        assert.ok(e instanceof FileError, String(e));
        assert.equal(e.kind, 'changed');
        assert.equal(e.path, path);
        assert.match(e.problem, /changed while it was being balanced/);
        return true;
      });
      assert.ok(readFileSync(path).equals(saved), 'the newer save is kept');
      assert.deepEqual(readdirSync(dir), ['mlp_relu.safetensors']);
    });
  }

  it('the CLI exits 2 naming the file when the save lands between reading and writing', async () => {
    const index = copySet();
    const shard = join(index, '..', SHARDS[1]);
    const child = await startPaused(['balance', index, '--in-place', '--activation', 'relu'], 'locked', 1500);
    const cp = safetensorsIndexFormat.open(index);
    const t = cp.tensors.find((x) => x.file === shard && x.name.endsWith('weight'))!;
    rewriteKeepingStamp(shard, t.offset, Buffer.alloc(16, 0x41));
    const saved = readFileSync(shard);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    assert.equal(await exited(child), 2);
    assert.match(err, new RegExp(`${shard.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the file changed while it was being balanced`));
    assert.ok(readFileSync(shard).equals(saved));
    assert.deepEqual(readdirSync(join(index, '..')).sort(), [INDEX, ...SHARDS].sort());
  });
});

describe('kill -9 during an in-place balance of a sharded checkpoint', () => {
  for (const point of ['shard-1', 'shard-2', 'before-commit', 'after-commit']) {
    it(`killed at ${point}: the set reads as all old or all new, and the next run cleans up`, async () => {
      const reference = await balancedReference();
      const index = copySet();
      const original = tensorBytes(index);
      const child = await startPaused(['balance', index, '--in-place', '--activation', 'relu'], point);
      await killed(child);
      const now = tensorBytes(index);
      const committed = point === 'after-commit';
      assert.ok(sameTensors(now, committed ? reference : original), `after a kill at ${point} the set is ${committed ? 'the new one' : 'the old one'}`);
      const dir = join(index, '..');
      assert.ok(existsSync(lockPathFor(index)), 'the killed run left its lock');
      // The next run: the stale lock is taken over, the killed run's shards and temporaries go.
      const again = await run(['balance', index, '--in-place', '--activation', 'relu']);
      assert.equal(again.code, 0, again.err);
      const left = readdirSync(dir);
      const named = new Set([...Object.values(JSON.parse(readFileSync(index, 'utf8')).weight_map as Record<string, string>), ...Object.values(JSON.parse(readFileSync(`${index}.bak`, 'utf8')).weight_map as Record<string, string>)]);
      for (const n of left) {
        if (n === INDEX || n === `${INDEX}.bak` || SHARDS.includes(n)) continue;
        assert.ok(named.has(n), `${n} is left over (named by neither the index nor its .bak)`);
      }
      assert.ok(!left.some((n) => n.startsWith('.')), `no temporaries or lock left: ${left.join(', ')}`);
      assert.ok(sameTensors(tensorBytes(`${index}.bak`), committed ? reference : original));
    });
  }
});

describe('two writers of one file', () => {
  it('the second is refused, naming the file and the other process; the language server reports the same; a dead holder is stale', async () => {
    const index = copySet();
    const child = await startPaused(['balance', index, '--in-place', '--activation', 'relu'], 'locked');
    try {
      const r = await run(['balance', index, '--in-place', '--activation', 'relu']);
      assert.equal(r.code, 2);
      assert.match(r.err, new RegExp(`${basename(index).replace(/\./g, '\\.')}: another synbal process \\(pid ${child.pid}, started [^)]+\\) is writing this file`));
      const bench = new Workbench(openNetwork, false);
      const lsp = await bench
        .balance(
          { path: index, options: { p: 2, activation: 'relu' }, solve: { scope: { kind: 'network' }, tolerance: 1e-7 }, output: { kind: 'in-place' }, verify: { enabled: false, force: false, requireCheck: false } } as never,
          { cancelled: () => false, progress: () => undefined },
        )
        .then(() => undefined, (e: unknown) => e);
      const failure = failureOf(lsp);
      assert.equal(failure.path, index);
      assert.equal(`${failure.path}: ${failure.problem}`, r.err.trim().replace(/^synbal: /, ''));
      assert.deepEqual(readdirSync(join(index, '..')).filter((n) => !n.startsWith('.')).sort(), [INDEX, ...SHARDS].sort());
    } finally {
      await killed(child);
    }
    const after = await run(['balance', index, '--in-place', '--activation', 'relu']);
    assert.equal(after.code, 0, after.err);
    assert.ok(!existsSync(lockPathFor(index)));
  });
});

describe('what killed runs leave beside a target', () => {
  it('stale temporaries and staging folders of dead processes are removed; those of live ones and other files stay', async () => {
    const dir = scratchDir('synbal-commit-');
    const path = join(dir, 'mlp_relu.safetensors');
    copyFileSync(join(MODELS, 'mlp_relu.safetensors'), path);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const live = process.ppid;
    const stale = [`.mlp_relu.safetensors.${dead}.1700000000000.tmp`, `.mlp_relu.safetensors.bak.${dead}.1700000000000.tmp`];
    const kept = [`.mlp_relu.safetensors.${live}.1700000000000.tmp`, `.other.safetensors.${dead}.1700000000000.tmp`, 'notes.txt'];
    for (const n of [...stale, ...kept]) writeFileSync(join(dir, n), 'x');
    mkdirSync(join(dir, `.mlp_relu.safetensors.synbal-staging-${dead}-1700000000000`));
    mkdirSync(join(dir, `.mlp_relu.safetensors.synbal-staging-${live}-1700000000000`));
    const r = await run(['balance', path, '--in-place', '--activation', 'relu', '--verify', '--force']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(
      readdirSync(dir).sort(),
      ['mlp_relu.safetensors', 'mlp_relu.safetensors.bak', ...kept, `.mlp_relu.safetensors.synbal-staging-${live}-1700000000000`].sort(),
    );
  });
});
