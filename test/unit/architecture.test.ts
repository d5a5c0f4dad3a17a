// Which folder may import which, read from the sources with the TypeScript compiler's
// pre-processor: no cycle between folders anywhere (a format's folder is one slice), the client
// and the webview reach the server only through server/src/contract/, the contract imports
// nothing outside itself, the webview bundle reaches nothing that needs Node, the engine is a
// floor, no format imports the registry, and the front ends reach the solvers and the writers
// only through the use cases in server/src/app/.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const rel = (f: string) => relative(root, f).split('\\').join('/');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const p = join(root, dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(rel(p)));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
function specifiers(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

/** The file a relative specifier names, or undefined for a package or node: module. */
function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  for (const f of [`${base}.ts`, join(base, 'index.ts'), base]) if (existsSync(f) && statSync(f).isFile()) return f;
  throw new Error(`${rel(from)}: cannot resolve ${spec}`);
}

interface Edge {
  from: string;
  to: string;
}

function localImports(file: string): string[] {
  return specifiers(file).flatMap((s) => resolveImport(file, s) ?? []);
}

/** The files reachable from `entry` by relative imports, the entry included. */
function closure(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...localImports(f));
  }
  return seen;
}

/**
 * The room a file belongs to: its folder, except that a format's folder is one vertical slice
 * with its subfolders (its network builder reads the format's own structures, and the format's
 * entry module hands the builder to the registry).
 */
function roomOf(file: string): string {
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

/** Every import between the project's own source files, as repository-relative paths. */
const EDGES: Edge[] = ['server/src', 'client/src', 'webview/src'].flatMap((d) => sources(d).flatMap((f) => localImports(f).map((t) => ({ from: rel(f), to: rel(t) }))));

describe('architecture', () => {
  it('reads the import graph (the rules below have something to check)', () => {
    assert.ok(EDGES.length > 300, `only ${EDGES.length} imports found`);
  });


  it('the client and the webview import nothing from server/src but server/src/contract', () => {
    for (const f of [...sources('client/src'), ...sources('webview/src')]) {
      for (const t of localImports(f)) {
        const r = rel(t);
        if (r.startsWith('server/')) assert.ok(r.startsWith('server/src/contract/'), `${rel(f)} imports ${r}`);
      }
    }
  });

  it('the contract imports only its own modules (no server code, no packages, no Node modules)', () => {
    for (const f of sources('server/src/contract')) {
      for (const s of specifiers(f)) {
        assert.ok(s.startsWith('./'), `${rel(f)} imports ${s}`);
        assert.ok(rel(resolveImport(f, s)!).startsWith('server/src/contract/'), `${rel(f)} imports ${s}`);
      }
    }
  });

  it('the webview bundle reaches only browser-safe modules (no node: imports, no Buffer)', () => {
    const reached = closure(join(root, 'webview/src/main.ts'));
    for (const f of reached) {
      const r = rel(f);
      assert.ok(r.startsWith('webview/src/') || r.startsWith('server/src/contract/'), `the webview reaches ${r}`);
      for (const s of specifiers(f)) assert.ok(s.startsWith('.'), `${r} imports ${s}`);
      assert.doesNotMatch(readFileSync(f, 'utf8').replace(/\/\/.*$/gm, ''), /\bBuffer\b/, `${r} uses Buffer`);
    }
    assert.ok([...reached].some((f) => rel(f) === 'server/src/contract/monitor.ts'));
  });

  it('treats a format folder and its subfolders as one slice, and any other folder as a room', () => {
    assert.equal(roomOf('server/src/formats/onnx/network/trace.ts'), 'server/src/formats/onnx');
    assert.equal(roomOf('server/src/formats/onnx/reader.ts'), 'server/src/formats/onnx');
    assert.equal(roomOf('server/src/formats/registry.ts'), 'server/src/formats');
    assert.equal(roomOf('client/src/monitor/runs/logRun.ts'), 'client/src/monitor/runs');
  });

  it('has no cycle between folders', () => {
    assert.deepEqual(folderCycles(EDGES), []);
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
    const outside = EDGES.filter((e) => e.from.startsWith('server/src/engine/') && !/^server\/src\/(engine|tensor)\//.test(e.to));
    assert.deepEqual(outside.map((e) => `${e.from} → ${e.to}`), []);
  });

  it('lets formats reach the registry only from outside: no format folder imports it', () => {
    const inward = EDGES.filter((e) => /^server\/src\/formats\/[^/]+\//.test(e.from) && e.to === 'server/src/formats/registry.ts');
    assert.deepEqual(inward.map((e) => `${e.from} → ${e.to}`), []);
  });

  it('has the front ends call the use cases, not the engine\'s solvers or the writers directly', () => {
    const direct = EDGES.filter((e) => /^server\/src\/(cli|lsp)\//.test(e.from) && /^server\/src\/engine\/(balance|applyScales|verify)\.ts$/.test(e.to));
    assert.deepEqual(direct.map((e) => `${e.from} → ${e.to}`), []);
  });
});
