// Every failure a reader reports is one plain Error whose message starts with the file's
// path; ChangedWhileReading passes through so callers can retry.
import { ChangedWhileReading } from '../checkpoint';

export function fail(path: string, problem: string): never {
  throw new Error(`${path}: ${problem}`);
}

export function asFileError(path: string, e: unknown): Error {
  if (e instanceof ChangedWhileReading) return e;
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof Error && e.constructor === Error && message.startsWith(`${path}:`)) return e;
  return new Error(message.startsWith(`${path}:`) ? message : `${path}: ${message}`, { cause: e });
}
