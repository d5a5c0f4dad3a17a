// The listing grammar (syntaxes/synbal-listing.tmLanguage.json) against text the server's own
// listing renderer produces: valid JSON, regexes in the subset Oniguruma and JavaScript share,
// and a small TextMate-style tokenizer (single-line rules, which is all the grammar uses)
// giving layer headings, unit labels, numbers and status words the expected scopes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { compile } from '../../server/src/engine/compile';
import type { Network } from '../../server/src/engine/network';
import { lp } from '../../server/src/engine/regularizer';
import { mlp } from '../../server/src/examples/networks';
import { networkJsonFormat } from '../../server/src/formats/networkJson';
import type { CheckpointAnalysis } from '../../server/src/app/analysis';
import { analyzeNetwork } from '../../server/src/app/analyse';
import { findUnit } from '../../server/src/contract/listing';
import { layoutOf, renderListing, unitLabelRange, unitLine } from '../../server/src/lsp/listing';
import type { Entry } from '../../server/src/lsp/store';
import { SHAPES } from './helpers';

interface Rule {
  name?: string;
  match?: string;
  begin?: string;
  end?: string;
  captures?: Record<string, { name: string }>;
  beginCaptures?: Record<string, { name: string }>;
  patterns?: Rule[];
  include?: string;
}
interface Grammar {
  scopeName: string;
  patterns: Rule[];
  repository: Record<string, Rule>;
}

const grammarText = readFileSync(new URL('../../syntaxes/synbal-listing.tmLanguage.json', import.meta.url), 'utf8');
const grammar = JSON.parse(grammarText) as Grammar;
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

function allRules(): Rule[] {
  const out: Rule[] = [];
  const walk = (r: Rule) => {
    out.push(r);
    r.patterns?.forEach(walk);
  };
  grammar.patterns.forEach(walk);
  Object.values(grammar.repository).forEach(walk);
  return out;
}

/** A token: its text and the scopes it carries (innermost last). */
interface Token {
  text: string;
  scopes: string[];
}

const cache = new Map<string, RegExp>();
function re(src: string): RegExp {
  let r = cache.get(src);
  if (!r) cache.set(src, (r = new RegExp(src, 'dg')));
  return r;
}

function expand(rules: Rule[]): Rule[] {
  return rules.flatMap((r) => {
    if (r.include) {
      const target = grammar.repository[r.include.slice(1)];
      assert.ok(target, `unknown include ${r.include}`);
      return expand([target]);
    }
    if (!r.match && !r.begin && r.patterns) return expand(r.patterns);
    return [r];
  });
}

/** Scopes per character of a line. */
function tokenizeLine(line: string): string[][] {
  const scopes: string[][] = Array.from({ length: line.length }, () => [grammar.scopeName]);
  const paint = (from: number, to: number, name: string | undefined) => {
    if (!name) return;
    for (let i = from; i < to; i++) scopes[i].push(name);
  };
  const paintCaptures = (m: RegExpExecArray, caps: Rule['captures']) => {
    for (const [k, v] of Object.entries(caps ?? {})) {
      const span = m.indices![Number(k)];
      if (span) paint(span[0], span[1], v.name);
    }
  };
  const scan = (rules: Rule[], from: number, to: number, endRe?: string) => {
    let pos = from;
    while (pos <= to) {
      let best: { m: RegExpExecArray; r: Rule | undefined } | undefined;
      for (const r of rules) {
        const x = re((r.match ?? r.begin)!);
        x.lastIndex = pos;
        const m = x.exec(line);
        if (m && m.index <= to && (!best || m.index < best.m.index)) best = { m, r };
      }
      if (endRe) {
        const x = re(endRe);
        x.lastIndex = pos;
        const m = x.exec(line);
        if (m && (!best || m.index <= best.m.index)) return;
      }
      if (!best) return;
      const { m, r } = best;
      const start = m.index;
      const stop = start + m[0].length;
      paint(start, stop, r!.name);
      if (r!.match) {
        paintCaptures(m, r!.captures);
      } else {
        paintCaptures(m, r!.beginCaptures);
        // The rule's scope covers everything up to its end (here always the end of the line).
        paint(stop, line.length, r!.name);
        scan(expand(r!.patterns ?? []), stop, line.length, r!.end);
        return;
      }
      pos = stop > start ? stop : stop + 1;
    }
  };
  scan(expand(grammar.patterns), 0, line.length);
  return scopes;
}

function tokens(line: string): Token[] {
  const s = tokenizeLine(line);
  const out: Token[] = [];
  for (let i = 0; i < line.length; i++) {
    const key = s[i].join(' ');
    const last = out[out.length - 1];
    if (last && last.scopes.join(' ') === key) last.text += line[i];
    else out.push({ text: line[i], scopes: [...s[i]] });
  }
  return out;
}

const has = (t: Token, part: string) => t.scopes.some((s) => s.includes(part));
const withScope = (line: string, part: string) => tokens(line).filter((t) => has(t, part)).map((t) => t.text);

function analysisOf(net: Network): CheckpointAnalysis {
  const problem = compile(net, lp(2));
  return analyzeNetwork('/m/model.json', { format: networkJsonFormat, checkpoint: { path: '/m/model.json', format: 'synbal-network', tensors: [], files: [], warnings: [] }, network: net, notes: ['a note (with 2 numbers, 3.5)'] }, problem, { p: 2, activation: '' }, 0);
}

function entryOf(a: CheckpointAnalysis, state: Entry['state'] = 'analysed'): Entry {
  return { path: a.path, fileUri: 'file:///m/model.json', listingUri: 'synbal-listing:/m/model.json.listing', state, analysis: a, layout: layoutOf(a), version: 1 };
}

async function samples(): Promise<{ a: CheckpointAnalysis; lines: string[] }[]> {
  const nets = [...SHAPES.map((s) => s.build(3)), mlp({ sizes: [3, 5, 2], seed: 2, dtype: 'bfloat16' })];
  return Promise.all(nets.map(async (n) => {
    const a = analysisOf(n);
    return { a, lines: (await renderListing(entryOf(a), 1e-3, async () => {})).split('\n') };
  }));
}

describe('the listing grammar', () => {
  it('is valid JSON with the scope, language and path package.json names', () => {
    assert.equal(grammar.scopeName, 'source.synbal-listing');
    const g = pkg.contributes.grammars.find((x: { language: string }) => x.language === 'synbal-listing');
    assert.equal(g.scopeName, grammar.scopeName);
    assert.equal(g.path, './syntaxes/synbal-listing.tmLanguage.json');
    assert.ok(pkg.contributes.languages.some((l: { id: string; extensions?: string[] }) => l.id === 'synbal-listing' && !l.extensions));
    for (const l of pkg.contributes.languages) if (l.configuration) JSON.parse(readFileSync(new URL(`../../${l.configuration}`, import.meta.url), 'utf8'));
  });

  it('uses only regex syntax Oniguruma and JavaScript read alike', () => {
    const sources = allRules().flatMap((r) => [r.match, r.begin, r.end].filter((s): s is string => s !== undefined));
    assert.ok(sources.length >= 10);
    for (const src of sources) {
      assert.doesNotThrow(() => new RegExp(src, 'u'), src);
      // Oniguruma-only constructs JavaScript would misread (or reject).
      assert.doesNotMatch(src, /\(\?[imx-]+[:)]|\\[hHAzZGK]|\(\?>|[*+?}][+]|\\p\{/, src);
    }
    for (const r of allRules()) if (r.include) assert.ok(grammar.repository[r.include.slice(1)], r.include);
  });

  it("scopes the server's rendered listings: title, header keys, layers, units, numbers, statuses", async () => {
    let unitLines = 0;
    let unbalancedSeen = 0;
    for (const { a, lines } of await samples()) {
      assert.deepEqual(withScope(lines[0], 'markup.heading.title'), ['Synaptic Balance listing of']);
      assert.deepEqual(withScope(lines[0], 'string.unquoted.path'), ['/m/model.json']);
      for (const key of ['format', 'network', 'regularizer', 'R', 'balance', 'note']) {
        const line = lines.find((l) => l.startsWith(`${key} `))!;
        assert.deepEqual(withScope(line, 'keyword.other.key'), [key], line);
      }
      const R = lines.find((l) => l.startsWith('R '))!;
      assert.ok(withScope(R, 'constant.numeric').length >= 2, R);
      const layout = layoutOf(a);
      a.layers.forEach((l, li) => {
        const heading = lines[layout.layerLine[li]];
        assert.deepEqual(withScope(heading, 'entity.name.section.layer'), [l.name], heading);
        assert.deepEqual(withScope(heading, 'storage.type.role'), [l.role], heading);
        assert.deepEqual(withScope(heading, 'variable.other.field').slice(0, 2), ['units', 'balanceable'], heading);
        assert.ok(withScope(heading, 'constant.numeric').includes(String(l.units)), heading);
        for (let u = 0; u < l.units; u++) {
          const line = lines[layout.layerLine[li] + 1 + u];
          unitLines++;
          assert.deepEqual(withScope(line, 'entity.name.function.unit'), [l.name], line);
          assert.deepEqual(withScope(line, 'constant.numeric.index'), [String(u)], line);
          const fields = withScope(line, 'variable.other.field');
          assert.deepEqual(fields, ['IN', 'OUT', 'rel', 'λ*', 'ΔR'], line);
          const IN = line.match(/ IN (\S+)/)![1];
          if (IN !== '-') assert.ok(withScope(line, 'constant.numeric').includes(IN), line);
          const status = line.slice(line.indexOf('ΔR ')).split(/\s+/)[2];
          if (status === 'unbalanced') {
            unbalancedSeen++;
            assert.deepEqual(withScope(line, 'markup.deleted.status.unbalanced'), ['unbalanced'], line);
          } else if (status === 'ok') assert.deepEqual(withScope(line, 'markup.inserted.status'), ['ok'], line);
          else assert.ok(withScope(line, 'constant.language.status').includes(status) || withScope(line, 'markup.inserted.status').includes(status), line);
          if (line.includes(' — ')) assert.equal(withScope(line, 'comment.line.reason').length, 1, line);
          // A layer name with digits (fc1) never reads as a number.
          assert.ok(!tokens(line).some((t) => has(t, 'entity.name.function.unit') && has(t, 'constant.numeric')), line);
        }
      });
    }
    assert.ok(unitLines > 20 && unbalancedSeen > 0, `${unitLines} unit lines, ${unbalancedSeen} unbalanced`);
  });

  it('marks the error line of a checkpoint that could not be read', async () => {
    const e = { path: '/m/bad.onnx', fileUri: 'file:///m/bad.onnx', listingUri: 'synbal-listing:/m/bad.onnx.listing', state: 'failed', version: 1, failure: { message: 'truncated protobuf at byte 12' } } as unknown as Entry;
    const [title, error] = (await renderListing(e, 1e-3)).split('\n');
    assert.deepEqual(withScope(title, 'string.unquoted.path'), ['/m/bad.onnx']);
    assert.deepEqual(withScope(error, 'keyword.other.key'), ['error']);
    assert.deepEqual(withScope(error, 'invalid.illegal.error'), ['truncated protobuf at byte 12']);
  });

  it('reads grouped parameter counts and exponents as one number', () => {
    const line = 'network      mlp: 1,234,567 parameters, 40 units';
    assert.deepEqual(withScope(line, 'constant.numeric'), ['1,234,567', '40']);
    assert.deepEqual(withScope('R            1.5e-7; network deficit Σ(IN−OUT)² 2.25', 'constant.numeric'), ['1.5e-7', '2.25']);
  });
});

describe("the listing's layout (contract/listing.ts)", () => {
  it("finds every unit the server's renderer writes, at its label, and no unit that is not there", async () => {
    for (const { a, lines } of await samples()) {
      const layout = layoutOf(a);
      a.layers.forEach((l, li) => {
        for (let u = 0; u < l.units; u++) {
          const place = findUnit(lines.length, (i) => lines[i], l.name, u);
          assert.ok(place, `${l.name}#${u}`);
          assert.equal(place.line, unitLine(layout, li, u));
          assert.equal(lines[place.line].slice(place.start, place.end), `${l.name}#${u}`);
          assert.deepEqual([place.start, place.end], unitLabelRange(l, u));
        }
        assert.equal(findUnit(lines.length, (i) => lines[i], l.name, l.units), undefined, `${l.name}#${l.units}`);
      });
      assert.equal(findUnit(lines.length, (i) => lines[i], 'no-such-layer', 0), undefined);
    }
  });
});
