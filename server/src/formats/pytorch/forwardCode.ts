// What a TorchScript module's forward code says about the order of its layers and the
// activations between them. The code under code/ is straight-line Python for most modules
// (scripted or traced): `x0 = torch.relu((fc1).forward(x, ))`. It is evaluated symbolically,
// never run: each value is the input, a layer's output, an activation or pass-through applied
// to a value, or something opaque. An activation is stated only where a layer's input comes
// from the previous layer through recognised calls alone, and that layer's output has no other
// use; control flow, unknown calls, or values used twice leave it unknown.
import type { ModuleHint } from '../core/format';
import { UNKNOWN_BETWEEN } from '../stateDict/conventions';
import type { ModuleNode } from './structure';

interface Value {
  kind: 'input' | 'layer' | 'act' | 'pass' | 'opaque';
  /** Layer: its module path; act: the activation's class name ("ReLU", "LeakyReLU", "Tanh"). */
  name?: string;
  slope?: number;
  args: Value[];
  uses: number;
}

const ACTIVATIONS: Record<string, string> = {
  relu: 'ReLU', relu_: 'ReLU', leaky_relu: 'LeakyReLU', leaky_relu_: 'LeakyReLU', tanh: 'Tanh', sigmoid: 'Sigmoid',
  gelu: 'GELU', silu: 'SiLU', elu: 'ELU', selu: 'SELU', relu6: 'ReLU6', hardtanh: 'Hardtanh', softplus: 'Softplus',
  mish: 'Mish', hardswish: 'Hardswish', hardsigmoid: 'Hardsigmoid', softmax: 'Softmax', log_softmax: 'LogSoftmax',
};
const PASS_FUNCTIONS = /^(dropout|feature_dropout|alpha_dropout|flatten|contiguous|max_pool[123]d|avg_pool[123]d|adaptive_avg_pool[123]d|adaptive_max_pool[123]d|identity)$/;
const ACTIVATION_MODULES = /^(ReLU|LeakyReLU|Tanh|Sigmoid|GELU|SiLU|ELU|SELU|ReLU6|Hardtanh|Softplus|Mish|Hardswish|Hardsigmoid|Softmax|LogSoftmax|PReLU)$/;
const PASS_MODULES = /^(Identity|Dropout\d?d?|AlphaDropout|Flatten|MaxPool\dd|AvgPool\dd|AdaptiveAvgPool\dd|AdaptiveMaxPool\dd)$/;

class Ambiguous extends Error {}

/** Splits at top-level commas; drops the empty tail TorchScript writes (`f(x, )`). */
function splitArgs(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  let quote = '';
  for (const ch of s) {
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") quote = ch;
    else if ('([{'.includes(ch)) depth++;
    else if (')]}'.includes(ch)) depth--;
    if (ch === ',' && depth === 0 && !quote) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** `NAME(args)` with the parentheses matching across the whole text. */
function callOf(e: string): { fn: string; args: string[] } | undefined {
  const m = /^([\w.]+|\(\w+\)\.forward)\((.*)\)$/s.exec(e);
  if (!m) return undefined;
  let depth = 0;
  const inner = m[2];
  for (const ch of inner) {
    if (ch === '(') depth++;
    if (ch === ')' && --depth < 0) return undefined;
  }
  return depth === 0 ? { fn: m[1], args: splitArgs(inner) } : undefined;
}

interface Method {
  params: string[];
  body: string[];
}

function forwardMethod(source: string): Method | undefined {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => /^\s*def forward\(/.test(l));
  if (start < 0) return undefined;
  const indent = /^\s*/.exec(lines[start])![0].length;
  let sigEnd = start;
  while (sigEnd < lines.length && !/\)\s*(->.*)?:\s*$/.test(lines[sigEnd])) sigEnd++;
  const signature = lines.slice(start, sigEnd + 1).join(' ');
  const inside = signature.replace(/^\s*def forward\(/, '').replace(/\)\s*(->.*)?:\s*$/, '');
  // Parameters are `name: Type` at the top level (types may hold commas: Tuple[int, int]).
  const params = splitArgs(inside).map((p) => /^(\w+)/.exec(p)?.[1] ?? '');
  const body: string[] = [];
  for (let i = sigEnd + 1; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === '') continue;
    if (/^\s*/.exec(l)![0].length <= indent) break;
    body.push(l);
  }
  return { params: params.slice(1), body };
}

class Evaluator {
  readonly layers: Value[] = [];

  value(kind: Value['kind'], args: Value[], name?: string, slope?: number): Value {
    for (const a of args) a.uses++;
    const v: Value = { kind, args, uses: 0, ...(name !== undefined ? { name } : {}), ...(slope !== undefined ? { slope } : {}) };
    if (kind === 'layer') this.layers.push(v);
    return v;
  }

  /** Runs a module's forward on `arg`; throws Ambiguous where the code is not straight-line. */
  module(node: ModuleNode, arg: Value, depth: number): Value {
    const cls = node.typeName.split('.').pop()!;
    if (node.parameters.some((p) => p.name === 'weight' && p.tensor) && !ACTIVATION_MODULES.test(cls)) return this.value('layer', [arg], node.path);
    if (cls === 'LeakyReLU') return this.value('act', [arg], cls, Number(node.attributes.negative_slope ?? 0.01));
    if (ACTIVATION_MODULES.test(cls) && cls !== 'PReLU') return this.value('act', [arg], cls);
    if (PASS_MODULES.test(cls)) return this.value('pass', [arg]);
    const method = node.source !== undefined && depth < 32 ? forwardMethod(node.source) : undefined;
    if (!method || method.params.length !== 1) throw new Ambiguous();
    return this.run(node, method, arg, depth + 1);
  }

  private run(node: ModuleNode, method: Method, arg: Value, depth: number): Value {
    const vars = new Map<string, Value | ModuleNode | string>([[method.params[0], arg]]);
    const bodyIndent = /^\s*/.exec(method.body[0] ?? '')![0].length;
    for (const line of method.body) {
      if (/^\s*/.exec(line)![0].length !== bodyIndent) throw new Ambiguous();
      const t = line.trim();
      const ret = /^return (.+)$/.exec(t);
      if (ret) return this.expr(ret[1], vars, node, depth);
      const asg = /^(\w+)\s*=\s*(.+)$/.exec(t);
      if (!asg) throw new Ambiguous();
      const [, name, e] = asg;
      const child = /^self\.(\w+)$/.exec(e) ?? /^getattr\(self,\s*"([^"]+)"\)$/.exec(e);
      const sub = child ? node.children.find((c) => c.name === child[1]) : undefined;
      if (sub) vars.set(name, sub);
      else if (/^__torch__\.[\w.]+$|^torch\.[\w.]+$/.test(e)) vars.set(name, e);
      else vars.set(name, this.expr(e, vars, node, depth));
    }
    throw new Ambiguous();
  }

  private expr(e: string, vars: Map<string, Value | ModuleNode | string>, node: ModuleNode, depth: number): Value {
    e = e.trim();
    const bound = vars.get(e);
    if (bound !== undefined) {
      if (typeof bound === 'object' && 'kind' in bound) return bound;
      throw new Ambiguous();
    }
    const call = callOf(e);
    if (call) {
      const mod = /^\((\w+)\)\.forward$/.exec(call.fn);
      if (mod) {
        const sub = vars.get(mod[1]);
        if (!sub || typeof sub !== 'object' || 'kind' in sub || call.args.length !== 1) throw new Ambiguous();
        return this.module(sub, this.expr(call.args[0], vars, node, depth), depth);
      }
      const fnName = typeof vars.get(call.fn) === 'string' ? (vars.get(call.fn) as string) : call.fn;
      const short = /^(?:__torch__\.)?torch(?:\.nn\.functional|\._C\._nn)?\.(\w+)$/.exec(fnName)?.[1];
      if (short && call.args.length >= 1) {
        const first = this.expr(call.args[0], vars, node, depth);
        const rest = call.args.slice(1);
        // Further arguments must be literals (slope, inplace, dims, p): a tensor there is data flow.
        if (rest.some((a) => !/^(-?[\d.e+-]+|True|False|None|\[[\d, -]*\])$/.test(a))) return this.opaque([first, ...this.valuesIn(rest.join(','), vars)]);
        const act = ACTIVATIONS[short];
        if (act === 'LeakyReLU') return this.value('act', [first], act, rest.length ? Number(rest[0]) : 0.01);
        if (act) return this.value('act', [first], act);
        if (PASS_FUNCTIONS.test(short)) return this.value('pass', [first]);
        return this.opaque([first]);
      }
    }
    return this.opaque(this.valuesIn(e, vars));
  }

  private valuesIn(e: string, vars: Map<string, Value | ModuleNode | string>): Value[] {
    const out: Value[] = [];
    for (const m of e.matchAll(/\b\w+\b/g)) {
      const v = vars.get(m[0]);
      if (v && typeof v === 'object' && 'kind' in v) out.push(v);
      else if (v !== undefined) throw new Ambiguous();
    }
    return out;
  }

  private opaque(args: Value[]): Value {
    return this.value('opaque', args);
  }
}

/** The layer feeding `v` through activations and pass-throughs alone, each used once. */
function feeding(v: Value): { from: Value; acts: Value[] } | undefined {
  const acts: Value[] = [];
  let cur = v;
  while (cur.kind === 'act' || cur.kind === 'pass') {
    if (cur.uses !== 1) return undefined;
    if (cur.kind === 'act') acts.unshift(cur);
    cur = cur.args[0];
  }
  return cur.kind === 'layer' && cur.uses === 1 ? { from: cur, acts } : undefined;
}

/**
 * Hints in forward order for a TorchScript module whose root carries forward code: the modules
 * without weights first (their classes say which parents are Sequential), then each layer with
 * the activations between it and the next, or an UNKNOWN_BETWEEN marker where the code does
 * not make them unambiguous. Undefined when the root has no forward code.
 */
export function forwardHints(root: ModuleNode): ModuleHint[] | undefined {
  if (root.source === undefined || forwardMethod(root.source) === undefined) return undefined;
  const containers: ModuleHint[] = [];
  const visit = (m: ModuleNode) => {
    if (!m.parameters.some((p) => p.name === 'weight')) containers.push({ path: m.path, className: m.typeName, attrs: {} });
    m.children.forEach(visit);
  };
  visit(root);
  const ev = new Evaluator();
  let out: Value;
  try {
    out = ev.module(root, { kind: 'input', args: [], uses: 0 }, 0);
  } catch (e) {
    if (!(e instanceof Ambiguous)) throw e;
    // The code is not straight-line: no order and no activation is taken from it.
    return [...containers, { path: 'forward code', className: UNKNOWN_BETWEEN }];
  }
  out.uses++;
  const hints = [...containers];
  const seen = new Set<string>();
  ev.layers.forEach((layer, i) => {
    if (seen.has(layer.name!)) {
      // A layer called twice (shared weights): its neighbours are not a chain.
      hints.push({ path: `forward code: ${layer.name} called again`, className: UNKNOWN_BETWEEN });
      return;
    }
    seen.add(layer.name!);
    if (i > 0) {
      const f = feeding(layer.args[0]);
      if (!f || f.from !== ev.layers[i - 1]) hints.push({ path: `forward code: ${ev.layers[i - 1].name} → ${layer.name}`, className: UNKNOWN_BETWEEN });
      else {
        for (const a of f.acts) {
          hints.push({
            path: `forward code: ${a.name!.toLowerCase()} after ${f.from.name}`,
            className: `torch.nn.modules.activation.${a.name}`,
            attrs: a.slope !== undefined ? { negative_slope: a.slope } : {},
          });
        }
      }
    }
    // Its class is the marker too: a layer between two others chained by names is no activation.
    hints.push({ path: layer.name!, className: UNKNOWN_BETWEEN });
  });
  return hints;
}
