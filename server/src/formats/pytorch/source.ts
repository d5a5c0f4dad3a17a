// Sequential byte sources for the unpickler: an in-memory buffer (a zip entry) or a window
// over an open file (legacy checkpoints, whose pickles are followed by gigabytes of storage
// bytes that must not be read just to parse the small pickles in front of them).
import { readSync } from 'node:fs';

export class EndOfData extends Error {}

export interface ByteSource {
  /** Absolute position of the next byte (file offset for files, index for buffers). */
  readonly position: number;
  /** Bytes left before the end of the source. */
  remaining(): number;
  byte(): number;
  /** Exactly n bytes (a copy or a view; callers must not modify it). */
  bytes(n: number): Buffer;
  /** Bytes up to (not including) the next '\n'; the newline is consumed. */
  line(maxLength?: number): Buffer;
}

export class BufferSource implements ByteSource {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  get position(): number {
    return this.pos;
  }
  remaining(): number {
    return this.buf.length - this.pos;
  }
  byte(): number {
    if (this.pos >= this.buf.length) throw new EndOfData('unexpected end of data');
    return this.buf[this.pos++];
  }
  bytes(n: number): Buffer {
    if (n > this.remaining()) throw new EndOfData(`unexpected end of data (wanted ${n} bytes, ${this.remaining()} left)`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  line(maxLength = 1 << 20): Buffer {
    const end = this.buf.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > maxLength) throw new EndOfData('unterminated text line');
    const out = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return out;
  }
}

const WINDOW = 64 * 1024;

/** Reads a file forward from `start` through a small window, with positional reads. */
export class FileSource implements ByteSource {
  private window = Buffer.alloc(0);
  private windowStart: number;
  private pos: number;

  constructor(
    private readonly fd: number,
    private readonly size: number,
    start = 0,
  ) {
    this.pos = start;
    this.windowStart = start;
  }

  get position(): number {
    return this.pos;
  }
  remaining(): number {
    return this.size - this.pos;
  }

  private fill(n: number): void {
    const offsetInWindow = this.pos - this.windowStart;
    if (offsetInWindow >= 0 && offsetInWindow + n <= this.window.length) return;
    if (n > this.remaining()) throw new EndOfData(`unexpected end of file (wanted ${n} bytes at ${this.pos}, ${this.remaining()} left)`);
    const want = Math.min(Math.max(n, WINDOW), this.remaining());
    const buf = Buffer.allocUnsafe(want);
    let done = 0;
    while (done < want) {
      const got = readSync(this.fd, buf, done, want - done, this.pos + done);
      if (got === 0) throw new EndOfData(`unexpected end of file at byte ${this.pos + done}`);
      done += got;
    }
    this.window = buf;
    this.windowStart = this.pos;
  }

  byte(): number {
    this.fill(1);
    return this.window[this.pos++ - this.windowStart];
  }
  bytes(n: number): Buffer {
    this.fill(n);
    const at = this.pos - this.windowStart;
    this.pos += n;
    return this.window.subarray(at, at + n);
  }
  line(maxLength = 1 << 20): Buffer {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      this.fill(1);
      const at = this.pos - this.windowStart;
      const end = this.window.indexOf(0x0a, at);
      const stop = end < 0 ? this.window.length : end;
      parts.push(this.window.subarray(at, stop));
      total += stop - at;
      this.pos += stop - at;
      if (total > maxLength) throw new EndOfData('unterminated text line');
      if (end >= 0) {
        this.pos += 1;
        return Buffer.concat(parts);
      }
    }
  }
}
