// Which files found by the include globs are checkpoints worth a diagnostic. Extensions that
// plenty of other files share (.json above all) only count when a format recognises the bytes;
// for the rest, an unrecognised file is reported, since its name says it should be a model.
import { closeSync, openSync, readSync } from 'node:fs';
import { extname } from 'node:path';
import { FORMATS } from '../formats/registry';

const SHARED_EXTENSIONS = new Set(['json', 'bin', 'h5', 'hdf5', 'npy', 'npz', 'pkl', 'pickle', 'pb', 'data', 'txt', 'zip', 'msgpack']);

const HEAD_BYTES = 4096;

function recognised(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(HEAD_BYTES);
    const head = buf.subarray(0, readSync(fd, buf, 0, HEAD_BYTES, 0));
    return head.length > 0 && FORMATS.some((f) => f.sniff(head, path));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether a file should be analysed (and, if it fails, get a diagnostic). Reads at most 4 KiB. */
export function isCandidate(path: string): boolean {
  const ext = extname(path).slice(1).toLowerCase();
  return !SHARED_EXTENSIONS.has(ext) || recognised(path);
}
