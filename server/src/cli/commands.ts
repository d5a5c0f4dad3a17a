// The synbal commands on top of the formats and the engine.
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { analyze } from '../engine/analyze';
import { applyScales, scaledTensors, unitScales } from '../engine/applyScales';
import { balance, METHODS, type Method, type Scope } from '../engine/balance';
import { compile, type Problem } from '../engine/compile';
import type { Network } from '../engine/network';
import { lp, parseRegularizer, type Regularizer } from '../engine/regularizer';
import { compareFunctions, verifyLimit, type FunctionComparison } from '../engine/verify';
import { convNet, mlp, paperAutoencoder, residualNet, rnn } from '../examples/networks';
import { leakyRelu } from '../engine/activation';
import { networkToJson } from '../formats/networkJson';
import { verifyOnnx } from '../formats/onnx/verify';
import { openModel } from '../formats/registry';
import type { Tensor } from '../tensor/tensor';
import { defaultOutputPath, writeFileSafely } from '../formats/safeWrite';
import { hasOwnGraph, topologyFor } from '../graph/build';
import { openNetworkFile, type OpenedNetwork } from '../graph/open';
import { manifestPathFor } from '../graph/manifest';
import { checkFlags, flagNumber, flagString, type ParsedArgs } from './args';
import { BACKEND_NAMES, DEVICE_SETTINGS, type BackendName, type ComputeBackend, type DeviceSetting } from '../compute/backend';
import { cpuBackend } from '../compute/cpuBackend';
import { selectBackend } from '../compute/select';
import { parameterCount } from '../engine/network';
import { analysisJson, balanceJson, renderAnalysisText, renderBalanceText } from './render';
import { toSarif } from './sarif';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}


function regularizerOf(args: ParsedArgs): Regularizer {
  const r = flagString(args, 'regularizer');
  const p = flagNumber(args, 'p');
  if (r !== undefined && p !== undefined) throw new Error('give either --p or --regularizer, not both');
  return r !== undefined ? parseRegularizer(r) : lp(p ?? 2);
}

function formatOf(args: ParsedArgs, allowed: readonly string[] = ['text', 'json']): string {
  const f = flagString(args, 'format') ?? 'text';
  if (!allowed.includes(f)) throw new Error(`--format must be ${allowed.join(', ')}, got "${f}"`);
  return f;
}

export function parseScope(text: string | undefined): Scope {
  if (text === undefined || text === 'network') return { kind: 'network' };
  let m = /^layer(-tied)?:(.+)$/.exec(text);
  if (m) return { kind: 'layer', layer: m[2], tied: m[1] !== undefined };
  m = /^unit:(.+)#(\d+)$/.exec(text);
  if (m) return { kind: 'unit', layer: m[1], index: Number(m[2]) };
  throw new Error(`--scope must be network, layer:NAME, layer-tied:NAME or unit:NAME#INDEX, got "${text}"`);
}

interface Opened extends OpenedNetwork {
  file: string;
}

/** Tries when a file keeps changing while it is read (a training run saving it). */
const READ_ATTEMPTS = 4;

function open(file: string | undefined, args: ParsedArgs): Opened {
  if (!file) throw new Error('which file? (give a model file path)');
  return { file, ...openNetworkFile(file, { activation: flagString(args, 'activation'), attempts: READ_ATTEMPTS }) };
}

function compileFor(o: Opened, reg: Regularizer, compute?: ComputeBackend): Problem {
  try {
    return compile(o.network, reg, compute ?? cpuBackend);
  } catch (e) {
    throw new Error(`${o.file}: ${(e as Error).message}`);
  }
}

/** Flags that choose where the kernels run (check and balance). */
const COMPUTE_FLAGS = ['device', 'python', 'backend'];

/**
 * The backend for --device / --python / --backend; `auto` notes on stderr why it stayed on the
 * CPU. `fallback` is the device when none is named: `check` reads each weight once, which a GPU
 * cannot win after an upload, so it stays on the CPU unless asked.
 */
function computeFor(args: ParsedArgs, o: Opened, io: Io, fallback: DeviceSetting = 'auto'): ComputeBackend {
  const device = (flagString(args, 'device') ?? fallback) as DeviceSetting;
  if (!DEVICE_SETTINGS.includes(device)) throw new Error(`--device must be one of ${DEVICE_SETTINGS.join(', ')}, got "${device}"`);
  const backend = flagString(args, 'backend') as BackendName | undefined;
  if (backend !== undefined && !BACKEND_NAMES.includes(backend)) throw new Error(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got "${backend}"`);
  const sel = selectBackend({ device, python: flagString(args, 'python'), backend }, parameterCount(o.network));
  if (sel.note) io.err(`note: ${sel.note}\n`);
  return sel.backend;
}

export function inspect(args: ParsedArgs, io: Io): number {
  checkFlags(args, ['format', 'activation']);
  const o = open(args.positional[0], args);
  const problem = compileFor(o, lp(2));
  const net = o.network;
  const info = {
    file: o.file,
    format: o.format.id,
    groups: net.groups.map((g, gi) => ({
      name: g.name,
      role: g.role,
      units: g.size,
      activation: g.activation ? (g.activation.kind === 'other' ? g.activation.name : (g.activation.name ?? g.activation.kind)) : null,
      balanceable: problem.groupVars[gi].length,
    })),
    tensors: net.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
    connections: net.connections.length,
    ties: (net.ties ?? []).map((t) => ({ groups: t.groups, reason: t.reason })),
    notes: o.notes,
  };
  if (formatOf(args) === 'json') {
    io.out(JSON.stringify(info, null, 2) + '\n');
    return 0;
  }
  const lines = [`${o.file}  (${o.format.description})`, '', 'layers:'];
  for (const g of info.groups) lines.push(`  ${g.name.padEnd(12)} ${g.role.padEnd(7)} ${String(g.units).padStart(6)} units  ${(g.activation ?? '-').padEnd(12)} ${g.balanceable} balanceable`);
  lines.push('', 'tensors:');
  for (const t of info.tensors) lines.push(`  ${t.name.padEnd(20)} ${t.dtype.padEnd(9)} [${t.shape.join(', ')}]`);
  for (const t of info.ties) lines.push('', `tie: ${t.groups.join(' = ')} (${t.reason})`);
  if (info.notes.length) lines.push('', 'notes:', ...info.notes.map((n) => `  ${n}`));
  io.out(lines.join('\n') + '\n');
  return 0;
}

export function check(args: ParsedArgs, io: Io): number {
  checkFlags(args, ['p', 'regularizer', 'tolerance', 'format', 'activation', ...COMPUTE_FLAGS]);
  const format = formatOf(args, ['text', 'json', 'sarif']);
  const o = open(args.positional[0], args);
  const reg = regularizerOf(args);
  // The costs and their row and column sums (check's one pass over the weights) run on the device.
  const compute = reg.power !== undefined ? computeFor(args, o, io, 'cpu') : undefined;
  const problem = compileFor(o, reg, compute);
  const a = analyze(problem, undefined, { tolerance: flagNumber(args, 'tolerance') ?? 1e-7, skipPredictions: true });
  const info = { file: o.file, format: o.format.id, notes: o.notes };
  const device = compute?.device ?? 'cpu';
  if (format === 'sarif') io.out(JSON.stringify(toSarif(o.file, a, process.env.SYNBAL_VERSION ?? 'dev'), null, 2) + '\n');
  else io.out(format === 'json' ? JSON.stringify({ ...analysisJson(info, a), device }, null, 2) + '\n' : renderAnalysisText(info, a));
  return a.unbalanced > 0 ? 1 : 0;
}

export async function balanceCommand(args: ParsedArgs, io: Io): Promise<number> {
  checkFlags(args, ['p', 'regularizer', 'tolerance', 'format', 'output', 'scope', 'method', 'seed', 'max-iterations', 'in-place', 'verify', 'force', 'activation', ...COMPUTE_FLAGS]);
  const o = open(args.positional[0], args);
  const reg = regularizerOf(args);
  const compute = reg.power !== undefined ? computeFor(args, o, io) : undefined;
  const device = compute?.device ?? 'cpu';
  const problem = compileFor(o, reg, compute);
  if (problem.nVars === 0) {
    io.out(`${o.file}: no balanceable units, nothing written (see synbal check for the reasons)\n`);
    return 0;
  }
  const method = (flagString(args, 'method') ?? 'optimal') as Method;
  if (!METHODS.includes(method)) throw new Error(`--method must be one of ${METHODS.join(', ')}, got "${method}"`);
  const tolerance = flagNumber(args, 'tolerance') ?? 1e-7;
  const started = Date.now();
  const result = balance(problem, {
    method,
    scope: parseScope(flagString(args, 'scope')),
    tolerance,
    seed: flagNumber(args, 'seed'),
    maxIterations: flagNumber(args, 'max-iterations'),
    onProgress: (p) => {
      if (Date.now() - started > 500) io.err(`  [${device}] iteration ${p.iteration}: max relative deficit ${p.maxRelativeDeficit.toExponential(2)}\n`);
    },
  });
  // The engine's own check needs the original weights beside the balanced ones; otherwise
  // (no check, or ONNX, checked by running the files) the weights are scaled where they are.
  const engineCheck = args.flags.has('verify') && o.format.id !== 'onnx';
  const original = o.network;
  const changed = scaledTensors(problem, result.x, { inPlace: !engineCheck });
  const balanced = engineCheck ? applyScales(problem, result.x, changed) : undefined;
  const inPlace = args.flags.has('in-place');
  const explicit = flagString(args, 'output');
  if (inPlace && explicit) throw new Error('give either --in-place or --output, not both');
  const target = inPlace ? o.file : (explicit ?? defaultOutputPath(o.file, o.format.extensions[0]));
  const verify = args.flags.has('verify');
  // ONNX files are checked by running both files in onnxruntime: that is the real function.
  // Others by the engine's forward pass over the network read from the file.
  let verification: Verification | undefined;
  if (verify && o.format.id !== 'onnx') {
    try {
      verification = { method: 'engine forward pass', ...compareFunctions(original, balanced!) };
    } catch (e) {
      if (!args.flags.has('force')) throw new Error(`${o.file}: cannot verify the balanced network (${(e as Error).message}); use --force to write it unverified`);
    }
    refuseIfDifferent(o.file, verification, changed, args);
  }
  const written = o.format.id === 'onnx' && verify ? await writeVerifiedOnnx(o, changed, target, inPlace, args, (v) => (verification = v)) : o.format.write(o.checkpoint, changed, target, { backup: inPlace });
  io.out(formatOf(args) === 'json' ? JSON.stringify({ file: o.file, format: o.format.id, regularizer: reg.label, device, ...balanceJson(result, target, verification, layerScales(problem, result.x)), outputs: written }, null, 2) + '\n' : renderBalanceText(result, target, verification));
  return 0;
}

type Verification = FunctionComparison & { method: string };

function refuseIfDifferent(file: string, v: { maxRelative: number } | undefined, changed: ReadonlyMap<string, Tensor>, args: ParsedArgs): void {
  const limit = verifyLimit(changed.values());
  if (v && v.maxRelative > limit && !args.flags.has('force')) {
    throw new Error(`${file}: the balanced network's outputs differ by ${v.maxRelative.toExponential(2)} (relative) from the original, above ${limit}; nothing written (use --force to write anyway)`);
  }
}

/**
 * Writes the balanced ONNX copy under a temporary name, runs both files in onnxruntime, and
 * keeps it only when the outputs agree (or --force): a refused copy leaves nothing behind.
 */
async function writeVerifiedOnnx(o: Opened, changed: ReadonlyMap<string, Tensor>, target: string, inPlace: boolean, args: ParsedArgs, report: (v: Verification) => void): Promise<string[]> {
  const staging = join(dirname(target), `.${basename(target)}.verify-${process.pid}.onnx`);
  const files = o.format.write(o.checkpoint, changed, staging);
  let keep = false;
  try {
    const v = await verifyOnnx(o.file, staging, 1);
    const verification: Verification = { method: 'onnxruntime', maxAbsolute: v.maxAbsolute, maxRelative: v.maxRelative, samples: v.samples, steps: 1 };
    report(verification);
    refuseIfDifferent(o.file, verification, changed, args);
    // A self-contained model is the verified file itself: renamed into place, not written again.
    // With external data the model names its data files, so it is written again under the target's name.
    if (files.length === 1) {
      if (inPlace && existsSync(target)) copyFileSync(target, `${target}.bak`);
      renameSync(staging, target);
      keep = true;
    }
  } finally {
    if (!keep) for (const f of files) rmSync(f, { force: true });
  }
  return keep ? [target] : o.format.write(o.checkpoint, changed, target, { backup: inPlace });
}

/** Λ of every unit of every hidden layer (1 for units that were not scaled). */
function layerScales(problem: Problem, x: Float64Array): Record<string, number[]> {
  const lambda = unitScales(problem, x);
  const out: Record<string, number[]> = {};
  problem.network.groups.forEach((g, gi) => {
    if (g.role === 'hidden') out[g.name] = Array.from(lambda.subarray(problem.groupOffset[gi], problem.groupOffset[gi] + g.size));
  });
  return out;
}

/** Writes the layer list of a state dict as a manifest to check, edit and keep beside it. */
export function manifest(args: ParsedArgs, io: Io): number {
  checkFlags(args, ['output', 'force']);
  const file = args.positional[0];
  if (!file) throw new Error('which file? (give a checkpoint path)');
  const { checkpoint } = openModel(file);
  if (hasOwnGraph(checkpoint)) throw new Error(`${file}: the file states its own graph; it needs no manifest`);
  const topo = topologyFor(checkpoint);
  if (!topo) throw new Error(`${file}: no layers could be recognised from the tensor names; write the manifest by hand (schema: server/schemas/manifest.schema.json)`);
  const target = flagString(args, 'output') ?? manifestPathFor(file);
  if (existsSync(target) && !args.flags.has('force')) throw new Error(`${target} exists; use --force to replace it`);
  const doc = {
    $schema: 'https://github.com/synaptic-balance/synaptic-balance/server/schemas/manifest.schema.json',
    version: 1,
    ...(topo.inputSpatial ? { input: { spatial: topo.inputSpatial } } : {}),
    layers: topo.layers.map(({ unconfirmed: _u, activationSource: _s, ...l }) => l),
  };
  writeFileSafely(target, Buffer.from(JSON.stringify(doc, null, 2) + '\n', 'utf8'));
  io.out([`wrote ${target} (${topo.layers.length} layers, from ${topo.source})`, ...topo.notes.map((n) => `note: ${n}`), 'check the layer order and state every activation before relying on it'].join('\n') + '\n');
  return 0;
}

export const EXAMPLES: Record<string, () => Network> = {
  mlp: () => mlp({ name: 'leaky relu mlp 8-16-16-4', sizes: [8, 16, 16, 4], activation: leakyRelu(0.1), seed: 7, std: 0.5 }),
  autoencoder: () => paperAutoencoder(1),
  conv: () => convNet({ seed: 3 }),
  rnn: () => rnn({ hidden: 16, seed: 3 }),
  residual: () => residualNet(3),
};

export function example(args: ParsedArgs, io: Io): number {
  checkFlags(args, ['output']);
  const name = args.positional[0];
  const build = name ? EXAMPLES[name] : undefined;
  if (!build) throw new Error(`which example? one of ${Object.keys(EXAMPLES).join(', ')}`);
  const target = flagString(args, 'output') ?? `${name}.json`;
  writeFileSafely(target, Buffer.from(networkToJson(build()), 'utf8'));
  io.out(`wrote ${target}\n`);
  return 0;
}

/** The bundled example (a real ONNX file), checked, balanced, verified and checked again. */
export async function demo(args: ParsedArgs, io: Io, bundled: string): Promise<number> {
  checkFlags(args, ['out']);
  const outDir = resolve(flagString(args, 'out') ?? 'dist/demo');
  mkdirSync(outDir, { recursive: true });
  const target = relative(process.cwd(), join(outDir, basename(bundled).replace(/\.onnx$/, '.balanced.onnx')));
  bundled = relative(process.cwd(), bundled);
  io.out(`$ synbal check ${bundled}\n`);
  const before = check({ command: 'check', positional: [bundled], flags: new Map() }, io);
  io.out(`(exit ${before})\n\n$ synbal balance ${bundled} -o ${target} --verify\n`);
  await balanceCommand({ command: 'balance', positional: [bundled], flags: new Map<string, string | true>([['output', target], ['verify', true]]) }, io);
  io.out(`\n$ synbal check ${target}\n`);
  const after = check({ command: 'check', positional: [target], flags: new Map() }, io);
  io.out(`(exit ${after})\n`);
  return after;
}
