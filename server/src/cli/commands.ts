// The synbal commands: each parses its arguments into a use case's request (requests.ts),
// calls the use case (app/), and renders the outcome. No pipeline of its own.
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { READ_ATTEMPTS, checkFile, inspectFile } from '../app/analyse';
import { Workbench } from '../app/balance';
import { openNetworkFile } from '../app/openNetwork';
import { leakyRelu } from '../engine/activation';
import type { Network } from '../engine/network';
import { convNet, mlp, paperAutoencoder, residualNet, rnn } from '../examples/networks';
import { writeFileSafely } from '../formats/core/safeWrite';
import { networkToJson } from '../formats/networkJson';
import { openModel } from '../formats/registry';
import { topologyFor } from '../formats/stateDict/build';
import { manifestPathFor } from '../formats/stateDict/manifest';
import { checkFlags, flagString, type ParsedArgs } from './args';
import { analysisJson, balanceJson, renderAnalysisText, renderBalanceText, renderFixesText } from './render';
import { balanceRequestOf, checkRequestOf, fileOf, formatOf } from './requests';
import { toSarif } from './sarif';
import { FileError } from '../errors/fileError';

export { parseScope } from './requests';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Flags that choose where the kernels run (check and balance). */
const COMPUTE_FLAGS = ['device', 'python', 'backend'];

export function inspect(args: ParsedArgs, io: Io): number {
  checkFlags(args, ['format', 'activation']);
  const info = inspectFile(fileOf(args), flagString(args, 'activation') ?? '');
  if (formatOf(args) === 'json') {
    const { formatDescription: _d, ...json } = info;
    io.out(JSON.stringify(json, null, 2) + '\n');
    return 0;
  }
  const lines = [`${info.file}  (${info.formatDescription})`, '', 'layers:'];
  for (const g of info.groups) lines.push(`  ${g.name.padEnd(12)} ${g.role.padEnd(7)} ${String(g.units).padStart(6)} units  ${(g.activation ?? '-').padEnd(12)} ${g.balanceable} balanceable`);
  lines.push('', 'tensors:');
  for (const t of info.tensors) lines.push(`  ${t.name.padEnd(20)} ${t.dtype.padEnd(9)} [${t.shape.join(', ')}]`);
  for (const t of info.ties) lines.push('', `tie: ${t.groups.join(' = ')} (${t.reason})`);
  if (info.notes.length) lines.push('', 'notes:', ...info.notes.map((n) => `  ${n}`));
  io.out(lines.join('\n') + '\n');
  return 0;
}

export function check(args: ParsedArgs, io: Io): number {
  checkFlags(args, ['p', 'regularizer', 'tolerance', 'format', 'activation', 'predict', ...COMPUTE_FLAGS]);
  const format = formatOf(args, ['text', 'json', 'sarif']);
  const req = checkRequestOf(args);
  const { opened, analysis: a, device, predictions } = checkFile(req, { note: (n) => io.err(`note: ${n}\n`) });
  const info = { file: req.path, format: opened.format.id, notes: opened.notes };
  if (format === 'sarif') io.out(JSON.stringify(toSarif(req.path, a, process.env.SYNBAL_VERSION ?? 'dev'), null, 2) + '\n');
  else if (format === 'json') io.out(JSON.stringify({ ...analysisJson(info, a), device, ...(predictions ? { predictions } : {}) }, null, 2) + '\n');
  else io.out(renderAnalysisText(info, a) + (predictions ? renderFixesText(predictions) : ''));
  return a.unbalanced > 0 ? 1 : 0;
}

export async function balanceCommand(args: ParsedArgs, io: Io): Promise<number> {
  checkFlags(args, ['p', 'regularizer', 'tolerance', 'format', 'output', 'scope', 'method', 'seed', 'max-iterations', 'in-place', 'verify', 'force', 'input-shape', 'activation', ...COMPUTE_FLAGS]);
  const req = balanceRequestOf(args);
  const json = formatOf(args) === 'json';
  const started = Date.now();
  // One command, one file: the network is not kept, so an unverified balance scales it where it is.
  const bench = new Workbench((path, activation) => openNetworkFile(path, { activation, attempts: READ_ATTEMPTS }), false);
  const o = await bench.balance(req, {
    cancelled: () => false,
    note: (n) => io.err(`note: ${n}\n`),
    progress: (p) => {
      if (p.message.startsWith('iteration ') && Date.now() - started > 500) io.err(`  ${p.message}\n`);
    },
  });
  if (o.nothingToBalance) {
    const why = (o.whyNothing ?? []).map((w) => `  ${w}`);
    io.out([`${req.path}: no balanceable units, nothing written:`, ...why].join('\n') + '\n');
    return 0;
  }
  const s = o.solve!;
  io.out(json
    ? JSON.stringify({ file: req.path, format: o.format, regularizer: o.regularizer, device: o.device, ...balanceJson(s, o.output, o.verification, o.layerScales ?? {}), ...(o.verificationSkipped ? { verificationSkipped: o.verificationSkipped } : {}), outputs: o.written }, null, 2) + '\n'
    : renderBalanceText(s, o.output, o.verification, o.written, o.verificationSkipped));
  return 0;
}

/** Writes the layer list of a state dict as a manifest to check, edit and keep beside it. */
export function manifest(args: ParsedArgs, io: Io): number {
  checkFlags(args, ['output', 'force']);
  const file = fileOf(args, 'a checkpoint');
  const { format, checkpoint } = openModel(file);
  if (format.statesGraph) throw new FileError(file, `the file states its own graph; it needs no manifest`);
  const topo = topologyFor(checkpoint, format.stateDictHints?.(checkpoint));
  if (!topo) throw new FileError(file, `no layers could be recognised from the tensor names; write the manifest by hand (schema: server/schemas/manifest.schema.json)`);
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
