// TorchScript archives carry each class's Python-like source under code/. The pickle alone
// cannot tell a parameter from a buffer, nor give hyper-parameters that were compiled into
// constants (in_features, negative_slope); the class headers can.
import { emptyRecord, type ScriptClass } from './structure';

/** "archive/code/__torch__/torch/nn/modules/linear.py" → "__torch__.torch.nn.modules.linear". */
export function moduleOfCodePath(path: string, prefix: string): string | undefined {
  if (!path.startsWith(`${prefix}code/`) || !path.endsWith('.py')) return undefined;
  return path.slice(prefix.length + 'code/'.length, -'.py'.length).split('/').join('.');
}

function stringList(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|'([^']*)'/g)].map((m) => m[1] ?? m[2]);
}

export function parseScriptClasses(module: string, text: string): ScriptClass[] {
  const out: ScriptClass[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^class (\w+)\(/.exec(lines[i]);
    if (!m) continue;
    let end = i + 1;
    while (end < lines.length && (lines[end] === '' || /^\s/.test(lines[end]))) end++;
    const body = lines.slice(i + 1, end);
    const cls: ScriptClass = { qualifiedName: `${module}.${m[1]}`, parameters: [], buffers: [], constants: emptyRecord(), source: lines.slice(i, end).join('\n').trimEnd() };
    for (const line of body) {
      const t = line.trim();
      if (t.startsWith('__parameters__')) cls.parameters = stringList(t);
      else if (t.startsWith('__buffers__')) cls.buffers = stringList(t);
      else {
        const c = /^(\w+)\s*:\s*Final\[.*\]\s*=\s*(.+)$/.exec(t);
        if (c) cls.constants[c[1]] = c[2];
      }
    }
    out.push(cls);
    i = end - 1;
  }
  return out;
}
