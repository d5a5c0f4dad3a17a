// How fast the server answers while a large model is being analysed (and then solved) in its
// workers. Usage, after `npm run build`:
//   node --import tsx test/lsp/latency.ts [--sizes 784,4096,4096,4096,4096,4096,10] [--json]
// The large model is a `*.synthetic` file the test worker turns into an MLP (70,381,578
// float32 parameters by default); the requests go to a small model's listing meanwhile.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Diagnostic } from 'vscode-languageserver-protocol';
import { listingUriOf } from '../../server/src/contract/listing';
import { buildBenchWorker } from './benchWorkerBuild';
import { TestClient, fileUri } from './client';
import { makeWorkspace } from './workspace';

const EXAMPLE = join(__dirname, '..', '..', 'server', 'examples', 'mlp.json');

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Stats {
  n: number;
  p50: number;
  p95: number;
  max: number;
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))] ?? NaN;
  return { n: s.length, p50: q(0.5), p95: q(0.95), max: s[s.length - 1] ?? NaN };
}

async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await f();
  return [performance.now() - t, r];
}

/** Fires the small model's requests, one kind after another, until `done()` holds; latencies per kind. */
async function hammer(c: TestClient, listing: string, diag: Diagnostic, done: () => boolean): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = { hover: [], codeAction: [], listing: [], documentSymbol: [], codeLens: [] };
  const pos = diag.range.start;
  while (!done()) {
    out.hover.push((await timed(() => c.conn.sendRequest('textDocument/hover', { textDocument: { uri: listing }, position: pos })))[0]);
    out.codeAction.push((await timed(() => c.conn.sendRequest('textDocument/codeAction', { textDocument: { uri: listing }, range: diag.range, context: { diagnostics: [diag] } })))[0]);
    out.listing.push((await timed(() => c.listing(listing)))[0]);
    out.documentSymbol.push((await timed(() => c.conn.sendRequest('textDocument/documentSymbol', { textDocument: { uri: listing } })))[0]);
    out.codeLens.push((await timed(() => c.conn.sendRequest('textDocument/codeLens', { textDocument: { uri: listing } })))[0]);
    await new Promise((r) => setTimeout(r, 10));
  }
  return out;
}

export async function measureLatency(sizes: number[]): Promise<Record<string, unknown>> {
  const root = makeWorkspace({ 'mlp.json': readFileSync(EXAMPLE) });
  const worker = await buildBenchWorker();
  const c = await TestClient.start({ root, env: { SYNBAL_LSP_WORKER: worker }, settings: { include: ['**/*.json', '**/*.synthetic'] } });
  try {
    const small = fileUri(join(root, 'mlp.json'));
    const smallListing = listingUriOf(small);
    await c.settled(small);
    const diag = c.diagnostics.get(smallListing)!.find((d) => d.code === 'unit-unbalanced')!;

    const bigPath = join(root, 'big.synthetic');
    const big = fileUri(bigPath);
    const since = c.listingChanges.length;
    writeFileSync(bigPath, JSON.stringify({ sizes, dtype: 'float32' }));
    await c.waitFor('the large model to be analysed', () => c.listingChanges.slice(since).some((p) => p.fileUri === big && p.state === 'analysing'), 30000);
    const analysisStarted = performance.now();
    let analysed = false;
    void c.settled(big, since, 600_000).then(() => (analysed = true));
    const duringAnalysis = await hammer(c, smallListing, diag, () => analysed);
    const analysisMs = performance.now() - analysisStarted;

    const bigListing = listingUriOf(big);
    const [firstListingMs, text] = await timed(() => c.listing(bigListing));
    const [cachedListingMs] = await timed(() => c.listing(bigListing));
    const [symbolsMs, symbols] = await timed(() => c.conn.sendRequest('textDocument/documentSymbol', { textDocument: { uri: bigListing } }) as Promise<{ children: unknown[] }[]>);
    const bigDiags = c.diagnostics.get(bigListing) ?? [];
    const unitDiag = bigDiags.find((d) => d.code === 'unit-unbalanced')!;
    const [hoverBigMs] = await timed(() => c.conn.sendRequest('textDocument/hover', { textDocument: { uri: bigListing }, position: unitDiag.range.start }));

    // Resolving "balance the whole network" solves it on the balance worker: requests meanwhile.
    const netDiag = bigDiags.find((d) => d.code === 'layer-unbalanced')!;
    const actions = (await c.conn.sendRequest('textDocument/codeAction', { textDocument: { uri: bigListing }, range: netDiag.range, context: { diagnostics: [netDiag] } })) as { title: string }[];
    const network = actions.find((a) => a.title.startsWith('Balance the whole network'))!;
    let solved = false;
    const solveStarted = performance.now();
    const resolving = c.conn.sendRequest('codeAction/resolve', network).then((r) => {
      solved = true;
      return r as { title: string };
    });
    const duringSolve = await hammer(c, smallListing, diag, () => solved);
    const resolved = await resolving;
    const solveMs = performance.now() - solveStarted;

    const summary = (m: Record<string, number[]>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, stats(v)]));
    return {
      sizes,
      parameters: sizes.slice(1).reduce((s, n, i) => s + n * sizes[i] + n, 0),
      analysisMs,
      duringAnalysis: summary(duringAnalysis),
      resolveNetworkMs: solveMs,
      resolvedTitle: resolved.title,
      duringSolve: summary(duringSolve),
      bigListing: { lines: text.text.split('\n').length, chars: text.text.length, firstMs: firstListingMs, cachedMs: cachedListingMs },
      bigSymbols: { layers: symbols.length, units: symbols.reduce((s, l) => s + l.children.length, 0), ms: symbolsMs },
      bigHoverMs: hoverBigMs,
      bigDiagnostics: bigDiags.length,
      analysisProgress: c.progress.filter((p) => (p.value as { title?: string }).title === 'Synaptic Balance: analysing checkpoints').length > 0,
    };
  } finally {
    await c.stop();
  }
}

if (require.main === module) {
  const sizes = (flag('sizes') ?? '784,4096,4096,4096,4096,4096,10').split(',').map(Number);
  measureLatency(sizes).then(
    (r) => {
      if (process.argv.includes('--json')) return void console.log(JSON.stringify(r, null, 2));
      const f = (x: number) => x.toFixed(1);
      console.log(`model ${sizes.join('-')} (${(r.parameters as number).toLocaleString('en-US')} parameters): analysed in ${f(r.analysisMs as number)} ms; network solve (resolve) ${f(r.resolveNetworkMs as number)} ms`);
      for (const phase of ['duringAnalysis', 'duringSolve'] as const) {
        console.log(`\nrequests on a small model's listing ${phase === 'duringAnalysis' ? 'during the analysis' : 'during the solve'} (ms):`);
        for (const [k, s] of Object.entries(r[phase] as Record<string, Stats>)) console.log(`  ${k.padEnd(15)} n=${String(s.n).padStart(4)}  p50 ${f(s.p50).padStart(6)}  p95 ${f(s.p95).padStart(6)}  max ${f(s.max).padStart(6)}`);
      }
      const bl = r.bigListing as { lines: number; chars: number; firstMs: number; cachedMs: number };
      const bs = r.bigSymbols as { layers: number; units: number; ms: number };
      console.log(`\nlarge model: listing ${bl.lines} lines / ${(bl.chars / 1e6).toFixed(2)} MB in ${f(bl.firstMs)} ms (first, renders) and ${f(bl.cachedMs)} ms (cached);`);
      console.log(`  outline ${bs.layers} layers / ${bs.units} units in ${f(bs.ms)} ms; hover ${f(r.bigHoverMs as number)} ms; ${r.bigDiagnostics} listing diagnostics`);
      console.log(`  resolved: ${r.resolvedTitle}`);
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
