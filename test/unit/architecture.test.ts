// Which folder may import which, read from the sources' import statements: the client and the
// webview reach the server only through server/src/contract/, the contract imports nothing
// outside itself, the webview bundle reaches nothing that needs Node, the client's folders
// depend one way, and server/src/monitor is not imported back by what it imports.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

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
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\bfrom\s+'([^']+)'/gms), ...text.matchAll(/^\s*import\s+'([^']+)'/gm), ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)];
  return found.map((m) => m[1]);
}

/** The file a relative specifier names, or undefined for a package or node: module. */
function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  for (const f of [`${base}.ts`, join(base, 'index.ts'), base]) if (existsSync(f) && statSync(f).isFile()) return f;
  throw new Error(`${rel(from)}: cannot resolve ${spec}`);
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

describe('architecture', () => {
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

  it("client/src's folders depend one way (no cycle between folders)", () => {
    const folderOf = (f: string) => rel(dirname(f));
    const edges = new Map<string, Set<string>>();
    for (const f of sources('client/src')) {
      for (const t of localImports(f)) {
        const [a, b] = [folderOf(f), folderOf(t)];
        if (a === b || !b.startsWith('client/src')) continue;
        if (!edges.has(a)) edges.set(a, new Set());
        edges.get(a)!.add(b);
      }
    }
    const reaches = (from: string, to: string, seen = new Set<string>()): boolean => {
      if (from === to) return true;
      if (seen.has(from)) return false;
      seen.add(from);
      return [...(edges.get(from) ?? [])].some((n) => reaches(n, to, seen));
    };
    for (const [a, bs] of edges) for (const b of bs) assert.ok(!reaches(b, a), `client folders ${a} and ${b} import each other`);
  });

  it('server/src/monitor is not imported back by anything it imports', () => {
    const monitor = sources('server/src/monitor');
    for (const f of monitor) {
      for (const t of closure(f)) {
        if (monitor.includes(t)) continue;
        for (const u of localImports(t)) assert.ok(!monitor.includes(u), `${rel(f)} → … → ${rel(t)} imports ${rel(u)}`);
      }
    }
  });
});
