// The monitor page. Pure string building (no DOM, no `vscode`): the extension host bundle
// imports it, the browser tests serve exactly what it returns.

export interface MonitorHtmlOptions {
  /** `webview.asWebviewUri(dist/webview/monitor.js)`, as a string. */
  scriptUri: string;
  /** `webview.asWebviewUri(dist/webview/monitor.css)`, as a string. */
  styleUri: string;
  /** `webview.cspSource`. */
  cspSource: string;
  /** From `makeNonce()`, fresh for every page. */
  nonce: string;
  title?: string;
}

/** For text and attribute values in the pages the extension builds. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The page shell; `monitor.js` builds everything inside `#app`. The policy allows only our
 * own script (by nonce) and stylesheet, so styles are set from script through the CSSOM and
 * never with `style=` attributes, which `style-src` would block.
 */
export function monitorHtml(o: MonitorHtmlOptions): string {
  const csp = [
    `default-src 'none'`,
    `img-src ${o.cspSource} data: blob:`,
    `style-src ${o.cspSource}`,
    `script-src 'nonce-${o.nonce}'`,
  ].join('; ');
  const title = escapeHtml(o.title ?? 'Training Monitor');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(o.styleUri)}">
<title>${title}</title>
</head>
<body>
<div id="app" role="application" aria-label="${title}"></div>
<script nonce="${escapeHtml(o.nonce)}" src="${escapeHtml(o.scriptUri)}"></script>
</body>
</html>
`;
}

const NONCE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** 32 random alphanumerics from the platform's CSPRNG (Node 20 and browsers both have `crypto`). */
export function makeNonce(): string {
  const bytes = new Uint8Array(32);
  globalThis.crypto.getRandomValues(bytes);
  let s = '';
  // 62 does not divide 256: the slight bias toward the first 8 characters costs no security here.
  for (const b of bytes) s += NONCE_CHARS[b % NONCE_CHARS.length];
  return s;
}
