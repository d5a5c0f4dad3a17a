// Command-line parsing: positional arguments and --flags, with the flags each command accepts.

export interface ParsedArgs {
  command: string | undefined;
  positional: string[];
  flags: Map<string, string | true>;
  /** Every value of a repeatable flag, in order (`flags` keeps the last). */
  lists?: Map<string, string[]>;
}

/** Flags that take a value; the rest are switches. Short aliases map to long names. */
const VALUE_FLAGS = new Set(['p', 'regularizer', 'tolerance', 'format', 'output', 'scope', 'method', 'seed', 'max-iterations', 'out', 'activation', 'device', 'python', 'backend', 'input-shape']);
/** Value flags that may be given more than once. */
const REPEATABLE = new Set(['input-shape']);
const ALIASES: Record<string, string> = { o: 'output' };

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--?([a-zA-Z][\w-]*)(?:=(.*))?$/.exec(arg);
    if (!m) {
      positional.push(arg);
      continue;
    }
    const name = ALIASES[m[1]] ?? m[1];
    let value: string | true = true;
    if (m[2] !== undefined) value = m[2];
    else if (VALUE_FLAGS.has(name)) {
      const v = argv[++i];
      if (v === undefined) throw new Error(`--${name} needs a value`);
      value = v;
    }
    flags.set(name, value);
    if (REPEATABLE.has(name) && value !== true) lists.set(name, [...(lists.get(name) ?? []), value]);
  }
  return { command: positional.shift(), positional, flags, lists };
}

export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  if (v === true) throw new Error(`--${name} needs a value`);
  return v;
}

/** Every value of a repeatable flag. */
export function flagList(args: ParsedArgs, name: string): string[] {
  const listed = args.lists?.get(name);
  if (listed) return listed;
  const v = flagString(args, name);
  return v === undefined ? [] : [v];
}

export function flagNumber(args: ParsedArgs, name: string): number | undefined {
  const v = flagString(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${v}"`);
  return n;
}

export function checkFlags(args: ParsedArgs, allowed: readonly string[]): void {
  for (const name of args.flags.keys()) {
    if (!allowed.includes(name)) throw new Error(`unknown option --${name} for "${args.command}" (allowed: ${allowed.map((a) => '--' + a).join(', ')})`);
  }
}
