// Finding checkpoints and noticing when they are rewritten, by polling: plain LSP clients send
// no file events for binary files, and a training run saving every epoch must be seen anyway.
// A file is handed on only once its size and modification time have settled, so a half-written
// file is not read (and if one is, the analysis notices and the file comes round again).
import type { Dirent } from 'node:fs';
import { opendir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { FileStamp } from '../formats/core/checkpoint';
import { GlobSet } from './glob';
import { isStagingFolder } from '../app/writeChecked';

export interface WatchConfig {
  roots: string[];
  include: string[];
  exclude: string[];
  pollIntervalMs: number;
  settleMs: number;
}

export interface WatchEvents {
  /** A checkpoint appeared or changed, and has been still long enough to read. */
  ready(stamp: FileStamp): void;
  removed(path: string): void;
}

interface Seen {
  key: string;
  /** When this poll loop first saw the current size and mtime. */
  observedAt: number;
  /** Seen at startup (or first sight) rather than as a change. */
  first: boolean;
  /** The stamp last handed on. */
  emitted?: string;
}

const keyOf = (s: { size: number; mtimeMs: number }) => `${s.size}:${s.mtimeMs}`;

async function walk(root: string, include: GlobSet, exclude: GlobSet, out: Map<string, FileStamp>): Promise<void> {
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let entries: Dirent[];
    try {
      entries = [];
      for await (const e of await opendir(dir)) entries.push(e);
    } catch {
      continue; // a folder removed or unreadable mid-scan: the next poll sees the truth
    }
    for (const e of entries) {
      const full = join(dir, e.name);
      const rel = relative(root, full).split(sep).join('/');
      if (e.isDirectory()) {
        // A balanced copy being checked before it moves into place is not a checkpoint yet.
        if (!exclude.coversFolder(rel) && !isStagingFolder(e.name)) pending.push(full);
        continue;
      }
      // Symbolic links to files count; links to folders are not followed (no cycles).
      if (!(e.isFile() || e.isSymbolicLink()) || !include.matches(rel) || exclude.matches(rel)) continue;
      try {
        const s = await stat(full);
        if (s.isFile()) out.set(full, { path: full, size: s.size, mtimeMs: s.mtimeMs });
      } catch {
        // gone between listing and stat
      }
    }
  }
}

export class CheckpointWatcher {
  private config: WatchConfig | undefined;
  private readonly seen = new Map<string, Seen>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private again = false;
  private disposed = false;

  constructor(
    private readonly events: WatchEvents,
    private readonly log: (message: string) => void,
  ) {}

  configure(config: WatchConfig): void {
    this.config = config;
    this.pollNow();
  }

  /** Polls as soon as the current poll (if any) ends. */
  pollNow(): void {
    if (this.polling) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), 0);
  }

  /** The server read this version itself (a file it wrote): it need not be handed on again. */
  markAnalysed(stamp: FileStamp): void {
    const key = keyOf(stamp);
    this.seen.set(stamp.path, { key, observedAt: Date.now(), first: false, emitted: key });
  }

  /** Hand the file on again once it is settled (it changed while being read, or a re-analysis was asked for). */
  forget(path: string): void {
    const s = this.seen.get(path);
    if (s) s.emitted = undefined;
  }

  forgetAll(): void {
    for (const s of this.seen.values()) s.emitted = undefined;
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async poll(): Promise<void> {
    const config = this.config;
    if (!config || this.disposed) return;
    this.polling = true;
    try {
      const include = new GlobSet(config.include);
      const exclude = new GlobSet(config.exclude);
      const files = new Map<string, FileStamp>();
      for (const root of config.roots) await walk(root, include, exclude, files);
      if (this.config !== config) return; // reconfigured meanwhile: that poll is already due
      const now = Date.now();
      for (const f of files.values()) {
        const key = keyOf(f);
        let s = this.seen.get(f.path);
        if (!s) {
          s = { key, observedAt: now, first: true };
          this.seen.set(f.path, s);
        } else if (s.key !== key) {
          s.key = key;
          s.observedAt = now;
          s.first = false;
        }
        const stillSinceSeen = now - s.observedAt >= config.settleMs;
        const oldOnDisk = now - f.mtimeMs >= config.settleMs && (s.first || s.observedAt < now);
        if ((stillSinceSeen || oldOnDisk) && s.emitted !== key) {
          s.emitted = key;
          this.events.ready(f);
        }
      }
      for (const path of [...this.seen.keys()]) {
        if (!files.has(path)) {
          this.seen.delete(path);
          this.events.removed(path);
        }
      }
    } catch (e) {
      this.log(`workspace scan failed: ${(e as Error).message}`);
    } finally {
      this.polling = false;
      if (!this.disposed) {
        const delay = this.again ? 0 : (this.config?.pollIntervalMs ?? 2000);
        this.again = false;
        this.timer = setTimeout(() => void this.poll(), delay);
      }
    }
  }
}
