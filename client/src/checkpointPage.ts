// The HTML of a checkpoint's summary page (the read-only custom editor). Pure, for tests: the
// numbers come from `synbal/checkpoints`, the buttons post `CheckpointPageMessage`s.
import type { CheckpointPageAction } from '../../server/src/contract/checkpointPage';
import type { CheckpointInfo } from '../../server/src/contract/requests';
import { escapeHtml } from '../../webview/src/html';

export interface CheckpointPageInput {
  fileName: string;
  info?: CheckpointInfo;
  cspSource: string;
  nonce: string;
}

const ACTIONS: { action: CheckpointPageAction; label: string; title: string }[] = [
  { action: 'openListing', label: 'Open Balance Listing', title: 'The listing: one line per layer and unit, with diagnostics and quick fixes' },
  { action: 'balanceNetwork', label: 'Balance Network…', title: 'Balance every unit and write the result (asks where and with which regularizer)' },
  { action: 'checkBalance', label: 'Check Balance', title: 'Analyse the file again and open its listing' },
];


function formatNumber(v: number | undefined, digits = 4): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? v.toPrecision(digits) : v.toExponential(digits - 1);
}

/** The rows of the summary table: label, value. */
export function summaryRows(info: CheckpointInfo | undefined): [string, string][] {
  if (!info) return [['State', 'not analysed yet']];
  const rows: [string, string][] = [['State', info.state]];
  if (info.format) rows.push(['Format', info.format]);
  if (info.parameters !== undefined) rows.push(['Parameters', formatNumber(info.parameters)]);
  if (info.balanceable !== undefined) rows.push(['Balanceable units', formatNumber(info.balanceable)]);
  if (info.unbalanced !== undefined) rows.push(['Out of balance', formatNumber(info.unbalanced)]);
  if (info.maxRelativeDeficit !== undefined) rows.push(['Largest relative deficit', formatNumber(info.maxRelativeDeficit)]);
  if (info.R !== undefined) rows.push(['Regularizer R', formatNumber(info.R, 6)]);
  if (info.error) rows.push(['Error', info.error]);
  return rows;
}

export function checkpointPageHtml(o: CheckpointPageInput): string {
  const { nonce, cspSource } = o;
  const csp = `default-src 'none'; style-src ${cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}'`;
  const rows = summaryRows(o.info)
    .map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join('\n      ');
  const buttons = ACTIONS.map((a) => `<button type="button" data-action="${a.action}" title="${escapeHtml(a.title)}">${escapeHtml(a.label)}</button>`).join('\n    ');
  const verdict = !o.info || o.info.state !== 'analysed'
    ? ''
    : (o.info.unbalanced ?? 0) > 0
      ? `<p class="verdict warn">${formatNumber(o.info.unbalanced)} of ${formatNumber(o.info.balanceable)} balanceable units are out of balance.</p>`
      : `<p class="verdict ok">Every balanceable unit is in balance.</p>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(o.fileName)}</title>
  <style nonce="${nonce}">
    body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 1em 2em; }
    table { border-collapse: collapse; margin: 1em 0; }
    th { text-align: left; font-weight: normal; color: var(--vscode-descriptionForeground); padding: 0.2em 2em 0.2em 0; }
    td { font-family: var(--vscode-editor-font-family); }
    button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 0.4em 1em; margin-right: 0.5em; cursor: pointer; }
    button:hover { background: var(--vscode-button-hoverBackground); }
    .warn { color: var(--vscode-editorWarning-foreground); }
    .ok { color: var(--vscode-testing-iconPassed, var(--vscode-foreground)); }
  </style>
</head>
<body>
  <h1>${escapeHtml(o.fileName)}</h1>
  ${verdict}
  <table>
      ${rows}
  </table>
  <div class="actions">
    ${buttons}
  </div>
  <script nonce="${nonce}">
    const vscode = acquireVsCodeApi();
    for (const b of document.querySelectorAll('button[data-action]')) {
      b.addEventListener('click', () => vscode.postMessage({ type: 'run', action: b.dataset.action }));
    }
  </script>
</body>
</html>`;
}
