// A restricted unpickler: a stack machine over the pickle opcodes (protocols 0–5, minus the
// extension registry and out-of-band buffers). It never calls anything by name: globals are
// resolved by the caller's `findGlobal`, which returns either an allowlisted PyFunction
// (pure value builders) or an inert PyGlobal; "calling" a PyGlobal just records the call.
import { EndOfData, type ByteSource } from './source';
import { PyDict, PyFunction, PyGlobal, PyObject, PySet, describe, isList, isTuple, tuple } from './values';

export interface UnpickleHooks {
  findGlobal(module: string, name: string): unknown;
  /**
   * A global the pickle calls (REDUCE, INST, OBJ): Python runs it, with the pickle's arguments,
   * when it loads the file. (NEWOBJ only asks a class for a new instance.)
   */
  called?(g: PyGlobal): void;
  /** Resolves a persistent id (torch storages); absent: persistent ids are an error. */
  persistentLoad?(pid: unknown): unknown;
}

export class PickleError extends Error {}

/**
 * Integers a pickle may spell with LONG/LONG1/LONG4 (bytes) or INT/LONG (decimal digits).
 * Checkpoints hold small ints; a megabyte-long one costs quadratic time to decode.
 */
export const MAX_LONG_BYTES = 1024;
/**
 * The work one pickle may cost: one unit per opcode, more per container it builds (their
 * memory), one per item copied (APPENDS, SETITEMS, BUILD, allowlisted calls). A checkpoint
 * with a hundred thousand tensors costs a few million; a pickle that is nothing but empty
 * lists stops here at a few hundred megabytes.
 */
export const MAX_PICKLE_WORK = 48_000_000;
const CONTAINER_COST = 8;

/** Integers beyond ±2^53 stay exact as BigInt. */
function normalizeInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Little-endian two's complement, the LONG1/LONG4 encoding. */
export function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  if (b.length > MAX_LONG_BYTES) throw new PickleError(`an integer of ${b.length} bytes (more than ${MAX_LONG_BYTES}): not a value a checkpoint holds`);
  let v = BigInt('0x' + Buffer.from(b).reverse().toString('hex'));
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return normalizeInt(v);
}

function parseIntText(text: string, what: string): number | bigint {
  if (text.length > MAX_LONG_BYTES * 3) throw new PickleError(`an integer of ${text.length} digits (more than ${MAX_LONG_BYTES * 3}): not a value a checkpoint holds`);
  const t = text.trim().replace(/L$/, '');
  if (!/^[+-]?\d+$/.test(t)) throw new PickleError(`bad ${what} literal ${JSON.stringify(text.slice(0, 40))}`);
  return normalizeInt(BigInt(t));
}

function parseFloatText(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'inf' || t === '+inf') return Infinity;
  if (t === '-inf') return -Infinity;
  if (t === 'nan' || t === '-nan') return NaN;
  const v = Number(t);
  if (Number.isNaN(v)) throw new PickleError(`bad float literal ${JSON.stringify(text.slice(0, 40))}`);
  return v;
}

/** Python's repr() of a byte string (protocol 0 STRING): quotes and backslash escapes. */
function unrepr(raw: string): string {
  const q = raw[0];
  if (raw.length < 2 || (q !== "'" && q !== '"') || raw[raw.length - 1] !== q) throw new PickleError('STRING opcode argument is not quoted');
  const body = raw.slice(1, -1);
  const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '0': '\0' };
  return body.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) => (e[0] === 'x' && e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : (simple[e] ?? '\\' + e)));
}

/** raw-unicode-escape (protocol 0 UNICODE): latin-1 bytes plus \uXXXX / \UXXXXXXXX. */
function rawUnicode(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u?: string, U?: string) => String.fromCodePoint(parseInt((u ?? U)!, 16)));
}

function u32(b: Buffer): number {
  return b.readUInt32LE(0);
}

function u64(b: Buffer): number {
  const v = b.readBigUInt64LE(0);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`length ${v} is too large`);
  return Number(v);
}

export function unpickle(src: ByteSource, hooks: UnpickleHooks): unknown {
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let work = 0;
  const spend = (units: number): void => {
    work += units;
    if (work > MAX_PICKLE_WORK) throw new PickleError(`the pickle builds too much (more than ${MAX_PICKLE_WORK} units of work: values, containers and copies); it is not a checkpoint a reader should expand`);
  };
  /** A new container on the stack: its memory counts. */
  const made = <T>(v: T): T => {
    spend(CONTAINER_COST);
    return v;
  };
  /** Items in the top-level arguments of an allowlisted call (what it may copy). */
  const argSize = (args: readonly unknown[]): number => {
    let n = args.length;
    for (const a of args) {
      if (Array.isArray(a)) n += a.length;
      else if (a instanceof Map) n += a.size;
      else if (typeof a === 'string') n += a.length >> 6;
      else if (a instanceof PySet) n += a.items.length;
    }
    return n;
  };

  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) throw new PickleError('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw new PickleError('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) throw new PickleError('MARK expected');
    return stack.splice(m);
  };
  const lenBytes = (n: number): Buffer => {
    if (n > src.remaining()) throw new PickleError(`a length of ${n} bytes runs past the end of the data`);
    return src.bytes(n);
  };
  const text = (): string => src.line().toString('utf8');
  const global = (module: string, name: string): unknown => hooks.findGlobal(module, name);
  const persistent = (pid: unknown): unknown => {
    if (!hooks.persistentLoad) throw new PickleError('persistent id in a pickle that may not have any');
    return hooks.persistentLoad(pid);
  };

  /** Calls an allowlisted builder, or records the call of an inert global. */
  const call = (fn: unknown, args: unknown, via: 'call' | 'new', runs: boolean): unknown => {
    if (!isTuple(args)) throw new PickleError(`call arguments must be a tuple, not ${describe(args)}`);
    spend(CONTAINER_COST);
    if (fn instanceof PyFunction) {
      spend(argSize(args));
      return fn.call(args);
    }
    if (fn instanceof PyGlobal) {
      if (runs) hooks.called?.(fn);
      return new PyObject(fn, args, via);
    }
    // Calling what an inert call returned (getattr(...)(...)): still inert.
    if (fn instanceof PyObject) return new PyObject(new PyGlobal(fn.cls.module, `${fn.cls.name}(…)`), args, via);
    throw new PickleError(`cannot call ${describe(fn)}`);
  };

  const setItems = (target: unknown, items: unknown[]): void => {
    if (items.length % 2) throw new PickleError('SETITEMS needs key/value pairs');
    spend(items.length);
    const map = target instanceof PyDict ? target : target instanceof PyObject ? target.dictItems : undefined;
    if (!map) throw new PickleError(`cannot set items on ${describe(target)}`);
    for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
  };
  const append = (target: unknown, items: unknown[]): void => {
    spend(items.length);
    if (isList(target)) for (const x of items) target.push(x);
    else if (target instanceof PyObject) for (const x of items) target.listItems.push(x);
    else throw new PickleError(`cannot append to ${describe(target)}`);
  };
  const build = (obj: unknown, state: unknown): void => {
    if (state instanceof Map) spend(state.size);
    else if (isTuple(state) && state[0] instanceof Map) spend(state[0].size);
    if (obj instanceof PyObject) {
      if (obj.state instanceof PyDict && state instanceof PyDict) for (const [k, v] of state) obj.state.set(k, v);
      else obj.state = state;
    } else if (obj instanceof PyDict) {
      // dict subclasses keep instance attributes (a state dict's _metadata) this way.
      const dictState = isTuple(state) ? state[0] : state;
      if (dictState instanceof PyDict) {
        obj.attrs ??= new Map();
        for (const [k, v] of dictState) if (typeof k === 'string') obj.attrs.set(k, v);
      }
    }
    // Other values (tensors rebuilt by allowlisted functions) ignore extra state.
  };

  try {
    for (;;) {
      const at = src.position;
      const op = src.byte();
      spend(1);
      switch (op) {
        case 0x80: {
          const proto = src.byte();
          if (proto > 5) throw new PickleError(`unsupported pickle protocol ${proto}`);
          break;
        }
        case 0x95: // FRAME: framing is only a read-ahead hint
          lenBytes(8);
          break;
        case 0x2e: // STOP
          return pop();
        case 0x28: // MARK
          spend(1);
          marks.push(stack.length);
          break;
        case 0x30: // POP
          if (marks.length > 0 && marks[marks.length - 1] === stack.length) marks.pop();
          else pop();
          break;
        case 0x31: // POP_MARK
          popMark();
          break;
        case 0x32: // DUP
          stack.push(top());
          break;

        case 0x4e: // NONE
          stack.push(null);
          break;
        case 0x88:
          stack.push(true);
          break;
        case 0x89:
          stack.push(false);
          break;
        case 0x49: {
          // INT: protocol 0 spells booleans as 01 / 00
          const t = text();
          stack.push(t === '01' ? true : t === '00' ? false : parseIntText(t, 'INT'));
          break;
        }
        case 0x4a:
          stack.push(src.bytes(4).readInt32LE(0));
          break;
        case 0x4b:
          stack.push(src.byte());
          break;
        case 0x4d:
          stack.push(src.bytes(2).readUInt16LE(0));
          break;
        case 0x4c:
          stack.push(parseIntText(text(), 'LONG'));
          break;
        case 0x8a:
          stack.push(decodeLong(lenBytes(src.byte())));
          break;
        case 0x8b: {
          const n = src.bytes(4).readInt32LE(0);
          if (n < 0) throw new PickleError('negative LONG4 length');
          if (n > MAX_LONG_BYTES) throw new PickleError(`an integer of ${n} bytes (more than ${MAX_LONG_BYTES}): not a value a checkpoint holds`);
          stack.push(decodeLong(lenBytes(n)));
          break;
        }
        case 0x46:
          stack.push(parseFloatText(text()));
          break;
        case 0x47:
          stack.push(src.bytes(8).readDoubleBE(0));
          break;

        case 0x53: // STRING
          stack.push(unrepr(text().trim()));
          break;
        case 0x54: // BINSTRING (a Python 2 str; torch reads those as UTF-8)
          stack.push(lenBytes(src.bytes(4).readInt32LE(0) >>> 0).toString('utf8'));
          break;
        case 0x55:
          stack.push(lenBytes(src.byte()).toString('utf8'));
          break;
        case 0x56: // UNICODE
          stack.push(rawUnicode(src.line()));
          break;
        case 0x58:
          stack.push(lenBytes(u32(src.bytes(4))).toString('utf8'));
          break;
        case 0x8c:
          stack.push(lenBytes(src.byte()).toString('utf8'));
          break;
        case 0x8d:
          stack.push(lenBytes(u64(src.bytes(8))).toString('utf8'));
          break;
        case 0x42:
          stack.push(new Uint8Array(lenBytes(u32(src.bytes(4)))));
          break;
        case 0x43:
          stack.push(new Uint8Array(lenBytes(src.byte())));
          break;
        case 0x8e:
        case 0x96: // BYTEARRAY8
          stack.push(new Uint8Array(lenBytes(u64(src.bytes(8)))));
          break;

        case 0x29:
          stack.push(made(tuple([])));
          break;
        case 0x74:
          stack.push(made(tuple(popMark())));
          break;
        case 0x85:
          stack.push(made(tuple([pop()])));
          break;
        case 0x86: {
          const b = pop();
          stack.push(made(tuple([pop(), b])));
          break;
        }
        case 0x87: {
          const c = pop();
          const b = pop();
          stack.push(made(tuple([pop(), b, c])));
          break;
        }
        case 0x5d:
          stack.push(made([]));
          break;
        case 0x6c:
          stack.push(made(popMark()));
          break;
        case 0x61: {
          const x = pop();
          append(top(), [x]);
          break;
        }
        case 0x65: {
          const items = popMark();
          append(top(), items);
          break;
        }
        case 0x7d:
          stack.push(made(new PyDict()));
          break;
        case 0x64: {
          const d = made(new PyDict());
          setItems(d, popMark());
          stack.push(d);
          break;
        }
        case 0x73: {
          const v = pop();
          const k = pop();
          setItems(top(), [k, v]);
          break;
        }
        case 0x75: {
          const items = popMark();
          setItems(top(), items);
          break;
        }
        case 0x8f:
          stack.push(made(new PySet()));
          break;
        case 0x90: {
          const items = popMark();
          const s = top();
          if (!(s instanceof PySet) || s.frozen) throw new PickleError(`cannot add items to ${describe(s)}`);
          spend(items.length);
          for (const x of items) s.items.push(x);
          break;
        }
        case 0x91: {
          const s = made(new PySet(true));
          for (const x of popMark()) s.items.push(x);
          stack.push(s);
          break;
        }

        case 0x70: // PUT
          spend(2);
          memo.set(Number(parseIntText(text(), 'PUT')), top());
          break;
        case 0x71:
          spend(2);
          memo.set(src.byte(), top());
          break;
        case 0x72:
          spend(2);
          memo.set(u32(src.bytes(4)), top());
          break;
        case 0x94:
          spend(2);
          memo.set(memo.size, top());
          break;
        case 0x67:
        case 0x68:
        case 0x6a: {
          const key = op === 0x67 ? Number(parseIntText(text(), 'GET')) : op === 0x68 ? src.byte() : u32(src.bytes(4));
          if (!memo.has(key)) throw new PickleError(`memo entry ${key} is used before it is set`);
          stack.push(memo.get(key));
          break;
        }

        case 0x63: {
          // GLOBAL: "module\nname\n"
          const module = text();
          const name = text();
          stack.push(global(module, name));
          break;
        }
        case 0x93: {
          const name = pop();
          const module = pop();
          if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError('STACK_GLOBAL needs two strings');
          stack.push(global(module, name));
          break;
        }
        case 0x52: {
          const args = pop();
          const fn = pop();
          stack.push(call(fn, args, 'call', true));
          break;
        }
        case 0x81: {
          const args = pop();
          const cls = pop();
          stack.push(call(cls, args, 'new', false));
          break;
        }
        case 0x92: {
          pop(); // keyword arguments: kept out of the record, nothing uses them
          const args = pop();
          const cls = pop();
          stack.push(call(cls, args, 'new', false));
          break;
        }
        case 0x69: {
          // INST: "module\nname\n", arguments since the mark
          const module = text();
          const name = text();
          const args = popMark();
          // INST and OBJ call the class (or whatever the global is) with the arguments.
          stack.push(call(global(module, name), tuple(args), 'new', true));
          break;
        }
        case 0x6f: {
          const items = popMark();
          if (items.length === 0) throw new PickleError('OBJ without a class');
          stack.push(call(items[0], tuple(items.slice(1)), 'new', true));
          break;
        }
        case 0x62: {
          const state = pop();
          build(top(), state);
          break;
        }
        case 0x50:
          stack.push(persistent(text()));
          break;
        case 0x51:
          stack.push(persistent(pop()));
          break;
        case 0x98: // READONLY_BUFFER: a no-op on in-band data
          break;
        case 0x82:
        case 0x83:
        case 0x84:
          throw new PickleError('extension registry codes (EXT1/2/4) are not supported');
        case 0x97:
          throw new PickleError('out-of-band buffers (NEXT_BUFFER) are not supported');
        default:
          throw new PickleError(`unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}`);
      }
    }
  } catch (e) {
    if (e instanceof EndOfData) throw new PickleError(`the pickle ends early (${e.message})`);
    throw e;
  }
}
