// The Markdown report: a header naming the machine, one row per network, a legend and the
// targets met. Every figure comes from the results passed in.
import type { MachineInfo } from './machine';
import type { NetworkResult } from './measure';
import {
  MB,
  PAPER_SPEEDUP_MIN,
  RSS_ALLOWANCE_BYTES,
  RSS_WEIGHT_FACTOR,
  SOLVE_PASS_MAX,
  TOLERANCE,
  paperSpeedup,
  rssLimitBytes,
  solvePassRatio,
  solved,
  verdicts,
} from './targets';

export interface Failure {
  name: string;
  error: string;
}

const mark = (ok: boolean): string => (ok ? '✓' : '✗');
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
// Three digits, so that a deficit just under the tolerance (9.996e-8) does not print as 1.0e-7.
const sci = (x: number): string => x.toExponential(3);
const mb = (bytes: number): string => (bytes / MB).toFixed(1);

function ms(x: number): string {
  if (x < 10) return x.toFixed(2);
  if (x < 100) return x.toFixed(1);
  return int(x);
}

const COLUMNS = [
  'network', 'params', 'weights MB', 'compile ms', 'pass ms', 'solve ms', 'solve/pass', 'iters', 'method',
  'max rel. deficit', 'conv', 'peak RSS MB', 'RSS limit MB', 'RSS ok', 'paper ms', 'paper steps', 'paper conv',
  'paper deficit', 'paper/fast',
];

function ratioCell(r: NetworkResult): string {
  const q = solvePassRatio(r).toFixed(1);
  return r.layerChain ? `${q} ${mark(solvePassRatio(r) <= SOLVE_PASS_MAX)}` : q;
}

function speedupCell(r: NetworkResult): string {
  const s = paperSpeedup(r);
  const text = `${s.lowerBound ? '>' : ''}${s.value.toFixed(s.value < 100 ? 1 : 0)}×`;
  return r.paperTarget ? `${text} ${mark(s.value >= PAPER_SPEEDUP_MIN)}` : text;
}

function paperConvCell(r: NetworkResult): string {
  if (r.paper.converged) return '✓';
  return r.paper.cap === 'time' ? `capped ${(r.paper.budgetMs / 1000).toFixed(0)} s` : `capped ${int(r.paper.maxSteps)} steps`;
}

function row(r: NetworkResult): string[] {
  const rssOk = r.peakRssBytes <= rssLimitBytes(r);
  return [
    r.label,
    int(r.params),
    mb(r.weightBytes),
    ms(r.compileMs),
    ms(r.pass.medianMs),
    ms(r.solve.medianMs),
    ratioCell(r),
    String(r.solve.iterations),
    r.solve.method,
    sci(r.solve.deficitAfter),
    mark(solved(r)),
    mb(r.peakRssBytes),
    mb(rssLimitBytes(r)),
    mark(rssOk),
    ms(r.paper.ms),
    int(r.paper.steps),
    paperConvCell(r),
    sci(r.paper.deficitAfter),
    speedupCell(r),
  ];
}

function table(rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rule = COLUMNS.map((_, i) => (i === 0 || i === 8 ? '---' : '---:'));
  return [line(COLUMNS), line(rule), ...rows.map(line)].join('\n');
}

function header(m: MachineInfo): string {
  return `Machine: ${m.cpu}, ${m.cores} cores, ${(m.totalMemBytes / 2 ** 30).toFixed(1)} GiB RAM (${m.platform}); Node ${m.node}; ${m.date}`;
}

function runCounts(results: readonly NetworkResult[]): string {
  return results
    .map((r) => `${r.name}: pass ×${r.pass.times.length}, solve ×${r.solve.times.length}, paper ×${r.paper.times.length}`)
    .join('; ');
}

function legend(results: readonly NetworkResult[]): string {
  return [
    'Legend:',
    '- params / weights MB: parameter count and bytes of the weight tensors in their dtype (MB = 2^20 bytes).',
    '- compile ms: `compile(net, lp(2))` (network build and compile are outside every other timing).',
    '- pass ms: median time of one `unitStats(problem, x)` at x ≠ 0: every unit\'s IN and OUT (visible units too), reading every weight once (after ≥ 1 warm-up run): the unit of work.',
    `- solve ms: median time of \`balance(problem, { method: 'optimal', tolerance: ${TOLERANCE.toExponential(0)} })\`; solve/pass in passes (target ≤ ${SOLVE_PASS_MAX} for layer chains, marked ✓/✗; the RNN uses Newton-CG and has no target).`,
    '- iters, method, max rel. deficit, conv: the fast solver\'s result.iterations, result.method, result.maxRelativeDeficitAfter, and converged to the tolerance.',
    `- peak RSS MB: maxRSS of a fresh child process that built, compiled and measured only that network; RSS limit = ${RSS_WEIGHT_FACTOR} × weights + ${RSS_ALLOWANCE_BYTES / MB} MB (the target).`,
    `- paper ms / steps / conv / deficit: the paper's schedule \`balance(problem, { method: 'layers', tolerance: ${TOLERANCE.toExponential(0)}, seed })\` (one random layer per step, per-unit updates), median of up to 3 runs when it converges; otherwise one run stopped at its time budget ("capped N s", checked once per epoch) with the deficit it reached.`,
    `- paper/fast: paper ms / solve ms; ">" marks a lower bound (capped run). Target ≥ ${PAPER_SPEEDUP_MIN}× on the autoencoder.`,
    `- Runs: ${runCounts(results)}.`,
  ].join('\n');
}

function targetSummary(results: readonly NetworkResult[], failures: readonly Failure[]): string {
  const lines = ['Targets:'];
  const byTarget = new Map<string, string[]>();
  for (const v of results.flatMap(verdicts)) {
    const list = byTarget.get(v.target) ?? [];
    list.push(`${v.network} ${mark(v.met)} (${v.detail})`);
    byTarget.set(v.target, list);
  }
  for (const [target, list] of byTarget) lines.push(`- ${target}: ${list.join(', ')}`);
  for (const f of failures) lines.push(`- ${f.name}: ✗ measurement failed: ${f.error}`);
  return lines.join('\n');
}

export function renderReport(m: MachineInfo, results: readonly NetworkResult[], failures: readonly Failure[], totalMs: number): string {
  return [
    '## Synaptic Balance benchmark',
    '',
    header(m),
    '',
    table(results.map(row)),
    '',
    legend(results),
    '',
    targetSummary(results, failures),
    '',
    `Total bench time (excluding the build): ${(totalMs / 1000).toFixed(1)} s.`,
  ].join('\n');
}
