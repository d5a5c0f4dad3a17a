// Proposing a topology for a bare state dict from its tensor names and shapes: nn.Sequential
// indices, fcN / linearN / layers.N chains, and transformer FFN blocks (fc1 → act → fc2 inside a
// residual). Shapes must agree for layers to be chained. Activations are never guessed: a
// module list from a pickled nn.Module may state them; otherwise they stay unknown.
import { isFloatDType, type Checkpoint, type TensorEntry } from '../core/checkpoint';
import type { LayerSpec, Topology } from './layerSpec';
import type { ModuleHint } from '../core/format';

/** A module seen in a pickled nn.Module, in registration order (forward order, usually). */
export type { ModuleHint } from '../core/format';

interface Module {
  prefix: string;
  params: Map<string, TensorEntry>;
}

type Kind = 'linear' | 'conv' | 'batchnorm' | 'other';

function modulesOf(cp: Checkpoint): Module[] {
  const m = new Map<string, Module>();
  for (const t of cp.tensors) {
    const dot = t.name.lastIndexOf('.');
    const prefix = dot < 0 ? '' : t.name.slice(0, dot);
    const param = t.name.slice(dot + 1);
    let mod = m.get(prefix);
    if (!mod) m.set(prefix, (mod = { prefix, params: new Map() }));
    mod.params.set(param, t);
  }
  return [...m.values()];
}

function kindOf(mod: Module): Kind {
  const w = mod.params.get('weight');
  if (mod.params.has('running_mean') && mod.params.has('running_var')) return 'batchnorm';
  if (!w || !isFloatDType(w.dtype)) return 'other';
  if (w.shape.length === 2) return 'linear';
  if (w.shape.length >= 3) return 'conv';
  return 'other';
}

/** Natural order of dotted paths: numeric parts compare as numbers (layers.10 after layers.9). */
export function comparePaths(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    const na = /^\d+$/.test(pa[i]) ? Number(pa[i]) : NaN;
    const nb = /^\d+$/.test(pb[i]) ? Number(pb[i]) : NaN;
    if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
    const ma = /^(\D*)(\d+)$/.exec(pa[i]);
    const mb = /^(\D*)(\d+)$/.exec(pb[i]);
    if (ma && mb && ma[1] === mb[1]) return Number(ma[2]) - Number(mb[2]);
    return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

const FFN_PAIRS: [RegExp, string][] = [
  [/^(.*)\.fc1$/, 'fc2'],
  [/^(.*)\.c_fc$/, 'c_proj'],
  [/^(.*)\.w1$/, 'w2'],
  [/^(.*)\.up_proj$/, 'down_proj'],
  [/^(.*)\.intermediate\.dense$/, 'output.dense'],
  [/^(.*)\.lin1$/, 'lin2'],
];

/**
 * A hint class that says "the file does not make the activation here unambiguous" (TorchScript
 * forward code with control flow, an unknown call, a value used twice): the activation between
 * the layers around it stays unknown.
 */
export const UNKNOWN_BETWEEN = '<unknown>';

const PASS_THROUGH = /\.(ReLU|LeakyReLU|PReLU|Identity|Dropout\d?d?|MaxPool\dd|AvgPool\dd|AdaptiveAvgPool\dd|AdaptiveMaxPool\dd|Flatten|Unflatten)$/;

/** What the parameter-free modules between two layers say about the activation. */
function activationBetween(hints: ModuleHint[], after: string, before: string | undefined): { activation?: string; source?: string } {
  const ia = hints.findIndex((h) => h.path === after);
  const ib = before === undefined ? hints.length : hints.findIndex((h) => h.path === before);
  if (ia < 0 || ib < 0 || ib <= ia) return {};
  let activation = 'identity';
  let source = `module list (nothing between ${after} and ${before ?? 'the end'})`;
  for (const h of hints.slice(ia + 1, ib)) {
    if (h.className === UNKNOWN_BETWEEN) return {};
    const cls = h.className.split('.').pop()!;
    // Anything else (Tanh, GELU, ReLU6…) is named as the activation: not homogeneous, so visible.
    if (!PASS_THROUGH.test('.' + cls)) return { activation: cls === 'ReLU6' ? 'relu6' : cls.toLowerCase(), source: `${h.path} (${cls})` };
    if (cls === 'ReLU') activation = 'relu';
    if (cls === 'LeakyReLU') activation = `leaky_relu:${h.attrs?.negative_slope ?? 0.01}`;
    if (cls === 'PReLU') activation = 'prelu';
    if (/ReLU$/.test(cls)) source = `${h.path} (${cls})`;
  }
  return { activation, source };
}

function layerOf(mod: Module, kind: 'linear' | 'conv', name: string): LayerSpec {
  return {
    name,
    kind,
    weight: mod.params.get('weight')!.name,
    ...(mod.params.has('bias') ? { bias: mod.params.get('bias')!.name } : {}),
  };
}

function outIn(mod: Module): { out: number; in: number } {
  const s = mod.params.get('weight')!.shape;
  return { out: s[0], in: s[1] };
}

/**
 * `keepOrder`: the checkpoint lists tensors in registration order (a pickled state dict), which
 * beats sorting names; safetensors files sort their keys, so names are sorted naturally there.
 */
export function proposeTopology(cp: Checkpoint, hints: ModuleHint[] = [], keepOrder = false): Topology | undefined {
  const mods = modulesOf(cp);
  if (!keepOrder) mods.sort((a, b) => comparePaths(a.prefix, b.prefix));
  const byPrefix = new Map(mods.map((m) => [m.prefix, m]));
  const notes: string[] = [];
  const layers: LayerSpec[] = [];
  const used = new Set<string>();

  // Transformer FFN blocks: each an independent fc1 → act → fc2 whose ends are a residual stream.
  for (const m of mods) {
    for (const [re, second] of FFN_PAIRS) {
      const match = re.exec(m.prefix);
      if (!match) continue;
      const m2 = byPrefix.get(`${match[1]}.${second}`);
      if (!m2 || kindOf(m) !== 'linear' || kindOf(m2) !== 'linear') continue;
      const a = outIn(m);
      const b = outIn(m2);
      if (b.in !== a.out || b.out !== a.in) continue;
      const stream = `input:${match[1]}`;
      const act = activationBetween(hints, m.prefix, m2.prefix);
      layers.push({ ...layerOf(m, 'linear', m.prefix), input: stream, ...(act.activation ? { activation: act.activation, activationSource: act.source } : {}) });
      layers.push({ ...layerOf(m2, 'linear', m2.prefix), input: m.prefix, visibleReason: 'residual stream' });
      used.add(m.prefix).add(m2.prefix);
      notes.push(`${match[1]}: a feed-forward block ${m.prefix} → ${m2.prefix} inside a residual stream (its ends stay fixed)`);
    }
  }

  // Chains of the remaining linear and conv layers, in natural order, while shapes agree.
  // A chain's order is its forward order only inside an nn.Sequential: integer names at the
  // root of a state dict, or a parent the module list calls Sequential. Elsewhere it is a
  // proposal that a manifest must confirm.
  const sequentialParent = (prefix: string): boolean => {
    const dot = prefix.lastIndexOf('.');
    const parent = dot < 0 ? '' : prefix.slice(0, dot);
    if (!/^\d+$/.test(prefix.slice(dot + 1))) return false;
    const hint = hints.find((h) => h.path === parent);
    return hint ? /(^|\.)Sequential$/.test(hint.className) : parent === '';
  };
  let prev: { name: string; out: number; conv: boolean } | undefined;
  let chain = 0;
  for (let i = 0; i < mods.length; i++) {
    const m = mods[i];
    if (used.has(m.prefix)) continue;
    const kind = kindOf(m);
    if (kind === 'batchnorm') {
      const last = layers[layers.length - 1];
      const channels = m.params.get('running_mean')!.shape[0];
      if (last && prev && last.name === prev.name && !last.batchnorm && channels === prev.out) {
        const p = (k: string) => m.params.get(k)?.name;
        last.batchnorm = { mean: p('running_mean')!, var: p('running_var')!, weight: p('weight'), bias: p('bias') };
        notes.push(`${m.prefix}: BatchNorm after ${last.name}`);
      }
      continue;
    }
    if (kind === 'other') {
      if (m.params.get('weight')?.shape.length === 1 && !m.params.has('running_mean')) notes.push(`${m.prefix}: a 1-D weight (a norm or PReLU?) is not placed in the chain`);
      continue;
    }
    const { out, in: fin } = outIn(m);
    const fits = prev && (kind === 'conv' ? prev.conv && fin * 1 === prev.out : prev.conv ? fin % prev.out === 0 : fin === prev.out);
    const spec = layerOf(m, kind, m.prefix);
    if (!fits) {
      if (prev) notes.push(`${m.prefix} does not take ${prev.name}'s ${prev.out} outputs: a new chain starts`);
      chain++;
      spec.input = chain === 1 ? 'input' : `input:${m.prefix}`;
    } else {
      const act = activationBetween(hints, prev!.name, m.prefix);
      const last = layers[layers.length - 1];
      if (act.activation) Object.assign(last, { activation: act.activation, activationSource: act.source });
      spec.input = prev!.name;
    }
    if (!sequentialParent(m.prefix)) spec.unconfirmed = true;
    layers.push(spec);
    prev = { name: m.prefix, out, conv: kind === 'conv' };
  }
  if (layers.some((l) => l.unconfirmed)) notes.push('the layer order is proposed from tensor names (not an nn.Sequential): its units stay unbalanced until a manifest confirms it (synbal manifest FILE writes one to edit)');
  if (layers.length === 0) return undefined;
  const known = layers.filter((l) => l.activation !== undefined).length;
  if (hints.length === 0) notes.push('the file states no activations: hidden units stay unbalanced until a manifest or the activation setting states them');
  else notes.push(`activations from the pickled module list for ${known} layer(s)`);
  return { layers, source: 'naming conventions', notes };
}
