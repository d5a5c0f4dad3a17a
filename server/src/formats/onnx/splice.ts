// Edits that change a field's length. Protobuf prefixes every message with its length, so an edit
// inside a tensor changes the length of the tensor, of the node or graph holding it, and so on up:
// each enclosing prefix is re-encoded (which may itself change size) before the file is copied.
import { closeSync, openSync, readSync } from 'node:fs';
import type { Patch } from '../core/patch';
import { writeAll } from '../core/patch';
import type { Frame } from './proto';
import { encodeVarint } from './wire';
import { FileError } from '../../errors/fileError';

export interface Edit {
  /** Replace bytes [start, end) of the source with `bytes`. */
  start: number;
  end: number;
  bytes: Buffer;
  /** The innermost frame containing [start, end); -1 for the top level. */
  frame: number;
}

function depthOf(frames: readonly Frame[], f: number, memo: Map<number, number>): number {
  let d = memo.get(f);
  if (d !== undefined) return d;
  d = f < 0 ? 0 : depthOf(frames, frames[f].parent, memo) + 1;
  memo.set(f, d);
  return d;
}

/** The edits plus the re-encoded length prefixes of every frame whose size they change. */
export function withLengthFixes(frames: readonly Frame[], edits: readonly Edit[]): Edit[] {
  const delta = new Map<number, number>();
  for (const e of edits) {
    const d = e.bytes.length - (e.end - e.start);
    if (d !== 0 && e.frame >= 0) delta.set(e.frame, (delta.get(e.frame) ?? 0) + d);
  }
  const memo = new Map<number, number>();
  const out = [...edits];
  // Deepest first, so a frame's total change is known before its parent's prefix is written.
  const pending = [...delta.keys()];
  const queued = new Set(pending);
  while (pending.length > 0) {
    pending.sort((a, b) => depthOf(frames, a, memo) - depthOf(frames, b, memo));
    const f = pending.pop()!;
    queued.delete(f);
    const d = delta.get(f) ?? 0;
    if (d === 0) continue;
    const fr = frames[f];
    const prefix = encodeVarint(fr.end - fr.start + d);
    out.push({ start: fr.lenPos, end: fr.lenPos + fr.lenSize, bytes: prefix, frame: fr.parent });
    const up = d + prefix.length - fr.lenSize;
    if (fr.parent >= 0) {
      delta.set(fr.parent, (delta.get(fr.parent) ?? 0) + up);
      if (!queued.has(fr.parent)) {
        queued.add(fr.parent);
        pending.push(fr.parent);
      }
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

export function allSameLength(edits: readonly Edit[]): boolean {
  return edits.every((e) => e.bytes.length === e.end - e.start);
}

export function asPatches(edits: readonly Edit[]): Patch[] {
  return edits.map((e) => ({ offset: e.start, bytes: e.bytes }));
}

/** Writes source with the (sorted, non-overlapping) edits applied to a new file descriptor. */
export function copyWithEdits(source: string, size: number, edits: readonly Edit[], outFd: number): void {
  const fd = openSync(source, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    let outPos = 0;
    const copy = (from: number, to: number) => {
      for (let p = from; p < to; ) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, to - p), p);
        if (n === 0) throw new FileError(source, `the file ended early at byte ${p} while it was being copied`);
        writeAll(outFd, chunk.subarray(0, n), outPos);
        outPos += n;
        p += n;
      }
    };
    let pos = 0;
    for (const e of edits) {
      if (e.start < pos) throw new FileError(source, `overlapping edits at byte ${e.start}`);
      copy(pos, e.start);
      writeAll(outFd, e.bytes, outPos);
      outPos += e.bytes.length;
      pos = e.end;
    }
    copy(pos, size);
  } finally {
    closeSync(fd);
  }
}
