// The torchvision corpus of npm run test:zoo: ONNX files exported at test time by
// test/zoo/zoo.py (Debian's torch 1.13 / torchvision 0.14), cached in .cache/zoo/<script hash>/,
// never committed. Each model's folder holds model.onnx, input.bin, output.bin (PyTorch's output
// for that input) and meta.json (shapes and the independent count of balanceable units).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const ZOO_SCRIPT = join(ROOT, 'test', 'zoo', 'zoo.py');

export interface ZooLayer {
  /** The PyTorch module's qualified name. */
  module: string;
  units: number;
  balanceable: boolean;
  reason?: string;
}

export interface ZooMeta {
  name: string;
  producer: string;
  input: number[];
  output: number[];
  units: number;
  balanceable: number;
  layers: ZooLayer[];
}

export interface ZooModel {
  name: string;
  dir: string;
  onnx: string;
  meta: ZooMeta;
  input: Float32Array;
  output: Float32Array;
}

/** The interpreter with Debian's torch, torchvision and onnx (not another python3 on the PATH). */
export const PYTHON = process.env.SYNBAL_ZOO_PYTHON ?? '/usr/bin/python3';

export function zooProblem(): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import torch, torchvision, onnx'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${PYTHON} cannot import torch, torchvision and onnx (apt-get install python3-torch python3-torchvision python3-onnx)`;
  }
}

export function zooCacheDir(): string {
  const hash = createHash('sha256').update(readFileSync(ZOO_SCRIPT)).digest('hex').slice(0, 16);
  return join(ROOT, '.cache', 'zoo', hash);
}

/** Exports the models not yet cached (one Python process for all of them), then reads them. */
export function zooModels(names: readonly string[]): ZooModel[] {
  const dir = zooCacheDir();
  const missing = names.filter((n) => !existsSync(join(dir, n, 'meta.json')));
  if (missing.length > 0) execFileSync(PYTHON, [ZOO_SCRIPT, dir, ...missing], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 20 * 60_000 });
  return names.map((name) => loadZooModel(join(dir, name), name));
}

function floats(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function loadZooModel(dir: string, name: string): ZooModel {
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as ZooMeta;
  return { name, dir, onnx: join(dir, 'model.onnx'), meta, input: floats(join(dir, 'input.bin')), output: floats(join(dir, 'output.bin')) };
}

/**
 * The PyTorch module an ONNX node came from. torch 1.13 names a node by its module scopes, each
 * child of a container written with its parent's local name: module m.layer1.0.conv1 gives
 * '/m/layer1/layer1.0/conv1/Conv', m.backbone.1.block.0.0 '/m/backbone/backbone.1/block/block.0/block.0.0/Conv'
 * (the first scope, `m`, is the test's wrapper; the last part is the operator).
 */
export function moduleOfNode(nodeName: string): string | undefined {
  const parts = nodeName.split('/').filter(Boolean).slice(1, -1);
  if (parts.length === 0) return undefined;
  let full = '';
  let last = '';
  for (const p of parts) {
    full = last && p.startsWith(`${last}.`) ? full + p.slice(last.length) : full ? `${full}.${p}` : p;
    last = p;
  }
  return full;
}
