// Which format a file is in (sniffed from its bytes, not its name), and how to read and write
// it. One entry per format; later formats add one line here.
import { readFileSync } from 'node:fs';
import type { Network } from '../engine/network';
import { isNetworkJson, networkToJson, parseNetworkJson } from './networkJson';

export interface ModelFormat {
  id: string;
  description: string;
  /** Cheap check on the file's first bytes. */
  sniff(head: Buffer): boolean;
  read(path: string): Network;
  /** Serialises a network with the same layout as the file it was read from. */
  write(net: Network): Buffer;
  /** The extension for derived files (`<name>.balanced.<ext>`). */
  extension: string;
}

const networkJsonFormat: ModelFormat = {
  id: 'synbal-network',
  description: 'Synaptic Balance network description (JSON)',
  sniff: (head) => isNetworkJson(head.toString('utf8')),
  read: (path) => parseNetworkJson(readFileSync(path, 'utf8'), path),
  write: (net) => Buffer.from(networkToJson(net), 'utf8'),
  extension: 'json',
};

export const FORMATS: readonly ModelFormat[] = [networkJsonFormat];

export function detectFormat(path: string): ModelFormat {
  let head: Buffer;
  try {
    const buf = readFileSync(path);
    head = buf.subarray(0, 4096);
  } catch (e) {
    throw new Error(`${path}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const format = FORMATS.find((f) => f.sniff(head));
  if (!format) throw new Error(`${path}: not a model format this tool knows (known: ${FORMATS.map((f) => f.description).join('; ')})`);
  return format;
}
