// Writing a balanced TF.js layers/graph model: each shard copied with the changed float32
// weights patched in (a weight split across two shards is patched in both), named after the
// target (`<target stem>.<shard name>`), and the target model.json with its manifest paths
// renamed to those copies. Every file goes through a temporary file; the copies are verified
// by re-reading the changed weights' bytes. Quantized weights and weights inside JavaScript
// modules are never written.
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative, sep } from 'node:path';
import type { Tensor } from '../../tensor/tensor';
import { assertUnchanged, bytesOf, readRange, type Checkpoint } from '../core/checkpoint';
import { writePatchedCopy, type Patch } from '../core/patch';
import type { WriteOptions } from '../core/format';
import { writeFileSafely } from '../core/safeWrite';
import { openTfjs, tfjsInfoOf } from './read';
import { fail } from '../../errors/fileError';


/** `<dir>/<target stem>.<shard file name>` — the copy of a shard that belongs to `target`. */
export function shardCopyPath(target: string, shardFile: string): string {
  const ext = extname(target);
  const stem = basename(target, ext === '.json' ? ext : '');
  return join(dirname(target), `${stem}.${basename(shardFile)}`);
}

export function writeTfjs(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  const info = tfjsInfoOf(cp);
  assertUnchanged(cp);
  if (info.wrapped) fail(cp.path, 'a model inside a JavaScript module is not written back (convert it to model.json + .bin shards first)');
  const entries = new Map(cp.tensors.map((t) => [t.name, t]));
  const layouts = new Map(info.layout.map((l) => [l.name, l]));
  const patches = new Map<number, Patch[]>();
  for (const [name, t] of changed) {
    const e = entries.get(name);
    const l = layouts.get(name);
    if (!e || !l) fail(cp.path, `no weight ${name} to write`);
    if (e.readOnlyReason) fail(cp.path, `weight ${name} cannot be written: ${e.readOnlyReason}`);
    if (t.dtype !== 'float32' || e.dtype !== 'float32') fail(cp.path, `weight ${name} must stay float32 (got ${t.dtype})`);
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) fail(cp.path, `weight ${name} has shape [${t.shape.join(', ')}], not [${e.shape.join(', ')}]`);
    const bytes = bytesOf(t);
    if (bytes.length !== e.byteLength) fail(cp.path, `weight ${name}: ${bytes.length} bytes for ${e.byteLength}`);
    let at = 0;
    for (const q of l.pieces) {
      const list = patches.get(q.shard) ?? [];
      list.push({ offset: q.offset, bytes: bytes.subarray(at, at + q.length) });
      patches.set(q.shard, list);
      at += q.length;
    }
  }
  // Shards were confined to the model's folder when read; a checkpoint made otherwise is refused
  // here rather than copying a file from elsewhere into the output.
  for (const s of info.shards) {
    const rel = relative(dirname(cp.path), s.file);
    if (rel === '' || isAbsolute(rel) || rel.split(sep).includes('..')) fail(cp.path, `weights shard ${s.manifestPath} lies outside the model's folder (${s.file}); refused`);
  }
  const written: string[] = [];
  const copies = info.shards.map((s) => shardCopyPath(target, s.file));
  if (new Set(copies).size !== copies.length) fail(cp.path, 'two shards would be copied to the same file name');
  info.shards.forEach((s, i) => {
    if (copies[i] === s.file) fail(cp.path, `the copy of shard ${s.file} would replace the shard itself; choose another target name`);
    const list = patches.get(i) ?? [];
    writePatchedCopy(s.file, copies[i], list, {
      backup: opts.backup,
      verify: (tmp) => {
        for (const q of list) {
          if (!readRange(tmp, q.offset, q.bytes.length).equals(q.bytes)) fail(target, `verification failed: ${copies[i]} does not hold the written bytes at ${q.offset}`);
        }
      },
    });
    written.push(copies[i]);
  });
  // The model JSON: the original with each group's paths renamed to the copies.
  const json = structuredClone(info.json) as Record<string, unknown> | { paths: string[] }[];
  const manifest = (Array.isArray(json) ? json : json.weightsManifest) as { paths: string[] }[] | undefined;
  info.groups.forEach((ids, g) => {
    if (manifest?.[g]) manifest[g].paths = ids.map((id) => relativeName(target, copies[id]));
  });
  const text = Buffer.from(JSON.stringify(json));
  writeFileSafely(target, text, {
    backup: opts.backup,
    verify: (tmp) => {
      if (!readFileSync(tmp).equals(text)) fail(target, 'verification failed: the model JSON was not written as planned');
    },
  });
  // Re-read the whole written model and compare the changed weights.
  const back = openTfjs(target);
  const backInfo = tfjsInfoOf(back);
  for (const [name, t] of changed) {
    const l = backInfo.layout.find((x) => x.name === name);
    if (!l) fail(target, `verification failed: weight ${name} is missing from the written model`);
    const got = Buffer.concat(l.pieces.map((q) => readRange(backInfo.shards[q.shard].file, q.offset, q.length)));
    if (!got.equals(bytesOf(t))) fail(target, `verification failed: weight ${name} reads back different bytes`);
  }
  return [target, ...written];
}

function relativeName(target: string, copy: string): string {
  return dirname(copy) === dirname(target) ? basename(copy) : copy;
}
