// Recently seen frames, so scrubbing back over a stretch already viewed needs no round trip.
// A 20 × 4096 frame with IN and OUT is ~1 MB, so the cache stays small.

import type { MonitorFrame } from '../../server/src/contract/monitor';

export class FrameCache {
  // A Map iterates in insertion order: re-inserting on read makes the first key the least recent.
  private readonly frames = new Map<string, MonitorFrame>();

  constructor(readonly capacity = 48) {}

  private static key(runId: string, index: number): string {
    return `${index}\u0000${runId}`;
  }

  get(runId: string, index: number): MonitorFrame | undefined {
    const k = FrameCache.key(runId, index);
    const f = this.frames.get(k);
    if (f) {
      this.frames.delete(k);
      this.frames.set(k, f);
    }
    return f;
  }

  put(frame: MonitorFrame): void {
    const k = FrameCache.key(frame.runId, frame.index);
    this.frames.delete(k);
    this.frames.set(k, frame);
    while (this.frames.size > this.capacity) {
      const oldest = this.frames.keys().next().value as string;
      this.frames.delete(oldest);
    }
  }

  dropRun(runId: string): void {
    for (const [k, f] of this.frames) if (f.runId === runId) this.frames.delete(k);
  }

  get size(): number {
    return this.frames.size;
  }
}
