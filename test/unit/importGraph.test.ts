// The server's import rules, read from the sources with the TypeScript compiler's pre-processor:
// no cycle between folders anywhere, the engine imports nothing outside itself but the tensor
// helpers, formats never import their registry, and the front ends reach the solvers and the
// writers only through the use cases. (architecture.test.ts holds the client's and the
// webview's rules: only the contract, browser-safe.)
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

const ROOT = resolve(__dirname, '..', '..');
const SOURCES = ['server/src', 'client/src', 'webview/src'];

interface Edge {
  from: string;
  to: string;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function resolveImport(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  return [`${base}.ts`, join(base, 'index.ts'), base].find((c) => existsSync(c) && statSync(c).isFile());
}

/** Every relative import between the project's own source files, as repository-relative paths. */
function importEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of SOURCES.flatMap((d) => sourceFiles(join(ROOT, d)))) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const imp of info.importedFiles) {
      if (!imp.fileName.startsWith('.')) continue;
      const target = resolveImport(file, imp.fileName);
      if (target) edges.push({ from: relative(ROOT, file), to: relative(ROOT, target) });
    }
  }
  return edges;
}

/**
 * The room a file belongs to: its folder, except that a format's folder is one vertical slice
 * with its subfolders (its network builder reads the format's own structures, and the format's
 * entry module hands the builder to the registry).
 */
export function roomOf(file: string): string {
  const slice = /^(server\/src\/formats\/[^/]+)\/./.exec(file);
  return slice && dirname(file) !== 'server/src/formats' ? slice[1] : dirname(file);
}

/** Strongly connected groups of rooms (Tarjan), each with the imports that close it. */
function folderCycles(edges: readonly Edge[]): string[] {
  const graph = new Map<string, Map<string, string>>();
  for (const e of edges) {
    const a = roomOf(e.from);
    const b = roomOf(e.to);
    if (a === b) continue;
    if (!graph.has(a)) graph.set(a, new Map());
    if (!graph.get(a)!.has(b)) graph.get(a)!.set(b, `${e.from} → ${e.to}`);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      group.push(w);
    } while (w !== v);
    if (group.length > 1) {
      const why = group.flatMap((a) => [...(graph.get(a) ?? [])].filter(([b]) => group.includes(b)).map(([, imp]) => `  ${imp}`));
      cycles.push(`${group.join(' ⇄ ')}\n${why.join('\n')}`);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

describe('import rules', () => {
  const edges = importEdges();

  it('reads the import graph (the rule checks below have something to check)', () => {
    assert.ok(edges.length > 300, `only ${edges.length} imports found`);
    assert.ok(edges.some((e) => e.from.startsWith('client/src/')) && edges.some((e) => e.from.startsWith('webview/src/')));
  });

  it('treats a format folder and its subfolders as one slice, and any other folder as a room', () => {
    assert.equal(roomOf('server/src/formats/onnx/network/trace.ts'), 'server/src/formats/onnx');
    assert.equal(roomOf('server/src/formats/onnx/reader.ts'), 'server/src/formats/onnx');
    assert.equal(roomOf('server/src/formats/registry.ts'), 'server/src/formats');
    assert.equal(roomOf('client/src/monitor/runs/logRun.ts'), 'client/src/monitor/runs');
  });

  it('has no cycle between folders', () => {
    assert.deepEqual(folderCycles(edges), []);
  });

  it('finds a cycle when there is one (the checker itself)', () => {
    const cycles = folderCycles([
      { from: 'a/x.ts', to: 'b/y.ts' },
      { from: 'b/y.ts', to: 'c/z.ts' },
      { from: 'c/z.ts', to: 'a/w.ts' },
    ]);
    assert.equal(cycles.length, 1);
    assert.match(cycles[0], /a/);
  });

  it('keeps the engine a floor: it imports only itself and the tensor helpers', () => {
    const outside = edges.filter((e) => e.from.startsWith('server/src/engine/') && !/^server\/src\/(engine|tensor)\//.test(e.to));
    assert.deepEqual(outside.map((e) => `${e.from} → ${e.to}`), []);
  });

  it('lets formats reach the registry only from outside: no format folder imports it', () => {
    const inward = edges.filter((e) => /^server\/src\/formats\/[^/]+\//.test(e.from) && e.to === 'server/src/formats/registry.ts');
    assert.deepEqual(inward.map((e) => `${e.from} → ${e.to}`), []);
  });

  it('has the front ends call the use cases, not the engine\'s solvers or the writers directly', () => {
    const direct = edges.filter((e) => /^server\/src\/(cli|lsp)\//.test(e.from) && /^server\/src\/engine\/(balance|applyScales|verify)\.ts$/.test(e.to));
    assert.deepEqual(direct.map((e) => `${e.from} → ${e.to}`), []);
  });
});
