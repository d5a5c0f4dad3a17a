// Format sniffing only sees the first bytes of a file, so it reads the first local header
// rather than the central directory at the end.
import { LOCAL_HEADER_SIZE, SIG_LOCAL } from './format';

/** Name of the first entry, or undefined when `head` does not start with a whole local header and name. */
export function firstZipEntryName(head: Buffer): string | undefined {
  if (head.length < LOCAL_HEADER_SIZE || head.readUInt32LE(0) !== SIG_LOCAL) return undefined;
  const len = head.readUInt16LE(26);
  return head.length >= LOCAL_HEADER_SIZE + len ? head.toString('utf8', LOCAL_HEADER_SIZE, LOCAL_HEADER_SIZE + len) : undefined;
}
