// Which files of a folder have been still (same size and modification time) for `settleMs`:
// a training job may be half-way through writing a checkpoint. Pure: the caller lists the
// folder and passes the clock.

export interface FileStamp {
  file: string;
  size: number;
  mtimeMs: number;
}

const key = (s: FileStamp) => `${s.size}:${s.mtimeMs}`;

export class SettledFiles {
  private readonly watching = new Map<string, { stamp: string; since: number }>();
  private readonly done = new Map<string, string>();

  constructor(private readonly settleMs: number) {}

  /** The files that settled with a stamp not handed out before, given the folder's listing now. */
  update(stamps: FileStamp[], now: number): FileStamp[] {
    const ready: FileStamp[] = [];
    const present = new Set<string>();
    for (const s of stamps) {
      present.add(s.file);
      const k = key(s);
      if (this.done.get(s.file) === k) continue;
      const w = this.watching.get(s.file);
      if (!w || w.stamp !== k) {
        this.watching.set(s.file, { stamp: k, since: now });
        if (this.settleMs > 0) continue;
      } else if (now - w.since < this.settleMs) continue;
      this.watching.delete(s.file);
      this.done.set(s.file, k);
      ready.push(s);
    }
    for (const f of [...this.watching.keys()]) if (!present.has(f)) this.watching.delete(f);
    for (const f of [...this.done.keys()]) if (!present.has(f)) this.done.delete(f);
    return ready;
  }
}
