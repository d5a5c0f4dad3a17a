// The editor theme as the webview sees it: VS Code sets `--vscode-*` variables on <html> and a
// `vscode-light` / `vscode-dark` / `vscode-high-contrast[-light]` class on <body>, and changes
// both when the user switches theme.

import { luminance, parseCssColor, type Rgb, type ThemeColors, type ThemeKind } from './colorScale';

const FALLBACK_DARK: ThemeColors = { kind: 'dark', background: [30, 30, 30], foreground: [204, 204, 204], accent: [0, 127, 212] };
const FALLBACK_LIGHT: ThemeColors = { kind: 'light', background: [255, 255, 255], foreground: [59, 59, 59], accent: [0, 95, 184] };

function kindFromBody(body: HTMLElement): ThemeKind | null {
  const c = body.classList;
  if (c.contains('vscode-high-contrast-light')) return 'high-contrast-light';
  if (c.contains('vscode-high-contrast')) return 'high-contrast';
  if (c.contains('vscode-light')) return 'light';
  if (c.contains('vscode-dark')) return 'dark';
  return null;
}

export function readTheme(): ThemeColors {
  const style = getComputedStyle(document.body);
  const v = (name: string): Rgb | null => parseCssColor(style.getPropertyValue(name));
  const background = v('--vscode-editor-background');
  const kind = kindFromBody(document.body) ?? (background && luminance(background) > 0.4 ? 'light' : 'dark');
  const fallback = kind === 'light' || kind === 'high-contrast-light' ? FALLBACK_LIGHT : FALLBACK_DARK;
  return {
    kind,
    background: background ?? fallback.background,
    foreground: v('--vscode-editor-foreground') ?? v('--vscode-foreground') ?? fallback.foreground,
    accent: v('--vscode-focusBorder') ?? fallback.accent,
    balance: v('--vscode-charts-green') ?? v('--vscode-testing-iconPassed') ?? undefined,
  };
}

/** The UI font for canvas text, matching the DOM around it. */
export function canvasFont(px: number): string {
  const family = getComputedStyle(document.body).getPropertyValue('--vscode-font-family').trim() || 'sans-serif';
  return `${px}px ${family}`;
}

/** Calls `onChange` (once per burst of mutations) when the theme class or variables change. */
export function watchTheme(onChange: () => void): () => void {
  let queued = false;
  const observer = new MutationObserver(() => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      onChange();
    });
  });
  observer.observe(document.body, { attributes: true, attributeFilter: ['class'] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
  return () => observer.disconnect();
}
