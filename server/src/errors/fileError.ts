// One error type for everything that goes wrong with a user's file: it carries the path and the
// problem apart, so each front end renders it once (the CLI as `path: problem`, the language
// server as a diagnostic whose message is the problem alone) instead of re-prefixing and
// stripping strings.

/** What kind of failure it is, for front ends that treat them differently. */
export type FileErrorKind =
  /** The bytes are no format this tool knows (or the file is empty). */
  | 'unknown-format'
  /** The file changed while it was read (a training run saving it): read it again later. */
  | 'changed'
  /** Unreadable, malformed, or not something this tool can balance. */
  | 'unreadable'
  /** A balanced file that would compute another function, or a write that was refused. */
  | 'refused';

export class FileError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly kind: FileErrorKind = 'unreadable',
    options?: ErrorOptions,
  ) {
    super(`${path}: ${problem}`, options);
    this.name = 'FileError';
  }
}

export function fail(path: string, problem: string, kind: FileErrorKind = 'unreadable'): never {
  throw new FileError(path, problem, kind);
}

/**
 * The error as a FileError about `path`: a FileError passes through (it already names its file,
 * which may be a shard or a manifest beside `path`); any other error becomes the problem.
 */
export function asFileError(path: string, e: unknown): FileError {
  if (e instanceof FileError) return e;
  const message = e instanceof Error ? e.message : String(e);
  // Messages of lower layers that already start with the path (node's own errors name it too).
  const problem = message.startsWith(`${path}: `) ? message.slice(path.length + 2) : message;
  return new FileError(path, problem, 'unreadable', { cause: e });
}

/** Runs `fn`, turning whatever it throws into a FileError about `path`. */
export function aboutFile<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asFileError(path, e);
  }
}

/** The file changed while it was read (a training run saving over it): read it again once it settles. */
export class ChangedWhileReading extends FileError {
  constructor(path: string, problem = 'the file changed while it was being read') {
    super(path, problem, 'changed');
    this.name = 'ChangedWhileReading';
  }
}

/** No known format recognises the file's bytes (or it is empty). */
export class UnknownFormatError extends FileError {
  constructor(path: string, problem: string) {
    super(path, problem, 'unknown-format');
    this.name = 'UnknownFormatError';
  }
}
