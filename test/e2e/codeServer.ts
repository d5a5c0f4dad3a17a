// A throw-away VS Code (code-server 4.100.3, installed by install-code-server.sh into .cache/)
// with this extension installed from its .vsix, driven by Playwright through Debian's Chromium.
// Every run gets fresh user-data, extensions, config and data folders.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const ROOT = join(__dirname, '..', '..');
export const CODE_SERVER_VERSION = '4.100.3';
const CODE_SERVER = join(ROOT, '.cache', `code-server-${CODE_SERVER_VERSION}`, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const CHROMIUM = '/usr/bin/chromium';

/** Why the suite cannot run here, or undefined. */
export function missingPrerequisite(): string | undefined {
  if (!existsSync(CODE_SERVER)) return `code-server ${CODE_SERVER_VERSION} is not installed: run test/e2e/install-code-server.sh (npm run test:e2e does)`;
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing: apt-get install chromium (test/e2e/install-code-server.sh does)`;
  return undefined;
}

/** The .vsix `npm run package` built (the newest, by name and version from package.json). */
export function packagedVsix(): string {
  const { name, version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const file = join(ROOT, `${name}-linux-x64-${version}.vsix`);
  if (!existsSync(file)) throw new Error(`${file} not found: run npm run package first`);
  return file;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const QUIET_SETTINGS = {
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'workbench.enableExperiments': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'security.workspace.trust.enabled': false,
  'window.restoreWindows': 'none',
  'chat.disableAIFeatures': true,
  'workbench.colorTheme': 'Default Dark Modern',
};

export interface SessionOptions {
  workspace: string;
  settings?: Record<string, unknown>;
  env?: Record<string, string>;
  /** code-server's --log level (`trace` also records the language client's messages). */
  logLevel?: string;
}

export class VsCodeSession {
  private constructor(
    readonly proc: ChildProcess,
    readonly browser: Browser,
    readonly page: Page,
    readonly dirs: { base: string; userData: string; extensions: string },
    readonly log: () => string,
  ) {}

  /** Installs the .vsix into a fresh extensions folder, starts code-server and opens the workspace. */
  static async start(o: SessionOptions): Promise<VsCodeSession> {
    const base = mkdtempSync(join(tmpdir(), 'synbal-e2e-'));
    const dirs = { base, userData: join(base, 'user-data'), extensions: join(base, 'extensions') };
    const env = { ...process.env, XDG_CONFIG_HOME: join(base, 'config'), XDG_DATA_HOME: join(base, 'data'), ...o.env };
    mkdirSync(join(dirs.userData, 'User'), { recursive: true });
    writeFileSync(join(dirs.userData, 'User', 'settings.json'), JSON.stringify({ ...QUIET_SETTINGS, ...o.settings }, null, 2));
    const common = ['--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions];
    execFileSync(process.execPath, [CODE_SERVER, ...common, '--install-extension', packagedVsix()], { env, stdio: 'pipe', timeout: 120_000 });
    const port = await freePort();
    let log = '';
    const proc = spawn(
      process.execPath,
      [CODE_SERVER, ...common, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', ...(o.logLevel ? ['--log', o.logLevel] : [])],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) break;
      } catch {
        // not listening yet
      }
      if (proc.exitCode !== null) throw new Error(`code-server exited (${proc.exitCode}):\n${log}`);
      if (Date.now() > deadline) throw new Error(`code-server did not answer /healthz within 60 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${url}/?folder=${encodeURIComponent(o.workspace)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    return new VsCodeSession(proc, browser, page, dirs, () => log);
  }

  /** The extension host's log and our output channel, for failure messages. */
  extensionLogs(): string {
    const out: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/exthost|Synaptic/i.test(p) && e.name.endsWith('.log')) out.push(`--- ${p}\n${readFileSync(p, 'utf8').slice(-4000)}`);
      }
    };
    const logs = join(this.dirs.userData, 'logs');
    if (existsSync(logs)) walk(logs);
    return out.join('\n');
  }

  /** Runs a command from the palette by its title ("Synaptic Balance: Open Worst Listing"). */
  async runCommand(title: string): Promise<void> {
    const page = this.page;
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
    await row.waitFor({ timeout: 10_000 });
    await page.keyboard.press('Enter');
  }

  async stop(): Promise<void> {
    await this.browser.close().catch(() => undefined);
    this.proc.kill('SIGTERM');
    await new Promise((r) => (this.proc.exitCode !== null ? r(undefined) : this.proc.once('exit', r)));
    rmSync(this.dirs.base, { recursive: true, force: true });
  }
}
