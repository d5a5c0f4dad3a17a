// Follows a growing file by byte offset: each poll stats it and reads only the bytes added
// since the last one. A file that shrank (truncated) or is another file now (rotated: new
// inode or device) starts over from byte 0. The file system is injected so tests can count
// the bytes read.
import { promises as fsp } from 'node:fs';

export interface TailStat {
  size: number;
  ino: number;
  dev: number;
}

export interface TailHandle {
  read(buffer: Buffer, position: number): Promise<number>;
  stat(): Promise<TailStat>;
  close(): Promise<void>;
}

export interface TailFs {
  /** undefined when the file does not exist (yet). */
  stat(path: string): Promise<TailStat | undefined>;
  open(path: string): Promise<TailHandle>;
}

export const nodeTailFs: TailFs = {
  async stat(path) {
    try {
      const s = await fsp.stat(path);
      return { size: s.size, ino: s.ino, dev: s.dev };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  },
  async open(path) {
    const h = await fsp.open(path, 'r');
    return {
      read: async (buffer, position) => (await h.read(buffer, 0, buffer.length, position)).bytesRead,
      stat: async () => {
        const s = await h.stat();
        return { size: s.size, ino: s.ino, dev: s.dev };
      },
      close: () => h.close(),
    };
  },
};

export type PollOutcome = 'missing' | 'unchanged' | 'grew' | 'reset';

const CHUNK = 4 << 20;

export class FileTail {
  private handle: TailHandle | undefined;
  private identity: { ino: number; dev: number } | undefined;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(
    readonly path: string,
    private readonly fs: TailFs = nodeTailFs,
    private readonly chunkBytes = CHUNK,
  ) {}

  /**
   * Reads what was appended since the last poll, in chunks handed to `onChunk` (never the
   * whole file at once). 'reset': the file was truncated or replaced; `onReset` ran first and
   * reading restarted at byte 0.
   */
  async poll(onChunk: (bytes: Buffer, offset: number) => void, onReset: () => void): Promise<PollOutcome> {
    const st = await this.fs.stat(this.path);
    if (!st) {
      if (this.handle) {
        await this.close();
        this.offset = 0;
        onReset();
        return 'reset';
      }
      return 'missing';
    }
    let outcome: PollOutcome = 'unchanged';
    const replaced = this.identity !== undefined && (st.ino !== this.identity.ino || st.dev !== this.identity.dev);
    if (replaced || st.size < this.offset) {
      await this.close();
      this.offset = 0;
      onReset();
      outcome = 'reset';
    }
    if (!this.handle) {
      this.handle = await this.fs.open(this.path);
      // The handle's own identity: the path may have been swapped between stat and open.
      const hs = await this.handle.stat();
      this.identity = { ino: hs.ino, dev: hs.dev };
    }
    const size = (await this.handle.stat()).size;
    if (size < this.offset) return outcome; // shrank just now: the next poll resets
    const buf = Buffer.allocUnsafe(Math.min(this.chunkBytes, Math.max(1, size - this.offset)));
    while (this.offset < size) {
      const n = await this.handle.read(buf.length > size - this.offset ? buf.subarray(0, size - this.offset) : buf, this.offset);
      if (n <= 0) break;
      const at = this.offset;
      this.offset += n;
      onChunk(buf.subarray(0, n), at);
      if (outcome === 'unchanged') outcome = 'grew';
    }
    return outcome;
  }

  /** Bytes [start, end) of the file being followed. */
  async readRange(start: number, end: number): Promise<Buffer> {
    if (!this.handle) throw new Error(`${this.path} is not open`);
    const buf = Buffer.alloc(end - start);
    let got = 0;
    while (got < buf.length) {
      const n = await this.handle.read(buf.subarray(got), start + got);
      if (n <= 0) throw new Error(`${this.path}: bytes ${start}–${end} are gone (the file shrank)`);
      got += n;
    }
    return buf;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    this.identity = undefined;
    await h?.close();
  }
}
