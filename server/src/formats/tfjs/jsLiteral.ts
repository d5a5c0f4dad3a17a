// Reading data out of a JavaScript module without running it: a parser for the object and
// array literals that bundlers emit around a TF.js model (unquoted keys, `!0`/`!1` for
// true/false, `.5` numbers, `void 0`), and the base64 string a weights module exports.

export class LiteralError extends Error {}

/** Model JSON nests a few dozen levels; a literal deeper than this is not one. */
export const MAX_LITERAL_DEPTH = 256;
/**
 * The characters one search may parse, over all the literals it tries: a few passes over the
 * script, so a script full of decoys costs about as much as a few reads of it.
 */
export const SEARCH_PASSES = 8;
export const SEARCH_SLACK = 1 << 20;

/** The search for a model literal gave up: it is reported, never retried. */
class SearchBudgetError extends LiteralError {}

class Parser {
  pos: number;
  private depth = 0;
  constructor(
    private readonly s: string,
    start: number,
  ) {
    this.pos = start;
  }

  private fail(what: string): never {
    throw new LiteralError(`${what} at character ${this.pos}`);
  }

  private ws(): void {
    const s = this.s;
    for (;;) {
      const c = s.charCodeAt(this.pos);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.pos++;
      else if (c === 47 && s[this.pos + 1] === '/') {
        const e = s.indexOf('\n', this.pos);
        this.pos = e < 0 ? s.length : e;
      } else if (c === 47 && s[this.pos + 1] === '*') {
        const e = s.indexOf('*/', this.pos + 2);
        if (e < 0) this.fail('unterminated comment');
        this.pos = e + 2;
      } else return;
    }
  }

  value(): unknown {
    this.ws();
    const s = this.s;
    const c = s[this.pos];
    if (c === '{' || c === '[') {
      if (this.depth >= MAX_LITERAL_DEPTH) this.fail(`a literal nested deeper than ${MAX_LITERAL_DEPTH} levels`);
      this.depth++;
      const v = c === '{' ? this.object() : this.array();
      this.depth--;
      return v;
    }
    if (c === '"' || c === "'") return this.string();
    if (c === '!') {
      this.pos++;
      this.ws();
      const d = s[this.pos];
      if (d === '0' || d === '1') {
        this.pos++;
        return d === '0';
      }
      return this.fail('unsupported "!" expression');
    }
    if (c === '-' || c === '+' || c === '.' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null], ['void 0', undefined], ['undefined', undefined], ['NaN', NaN], ['Infinity', Infinity]] as const) {
      if (s.startsWith(word, this.pos) && !/[\w$]/.test(s[this.pos + word.length] ?? '')) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail(`unexpected ${c === undefined ? 'end of text' : JSON.stringify(c)}`);
  }

  private number(): number {
    const m = /^[+-]?(?:Infinity|0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/.exec(this.s.slice(this.pos, this.pos + 64));
    if (!m) this.fail('bad number');
    this.pos += m[0].length;
    return Number(m[0]);
  }

  string(): string {
    const s = this.s;
    const q = s[this.pos++];
    let out = '';
    for (;;) {
      const i = this.pos;
      let j = i;
      while (j < s.length && s[j] !== q && s[j] !== '\\' && s[j] !== '\n') j++;
      out += s.slice(i, j);
      this.pos = j;
      if (j >= s.length || s[j] === '\n') this.fail('unterminated string');
      if (s[j] === q) {
        this.pos++;
        return out;
      }
      const e = s[j + 1];
      this.pos = j + 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '0': out += '\0'; break;
        case 'x': out += String.fromCharCode(parseInt(s.slice(this.pos, this.pos + 2), 16)); this.pos += 2; break;
        case 'u':
          if (s[this.pos] === '{') {
            const end = s.indexOf('}', this.pos);
            out += String.fromCodePoint(parseInt(s.slice(this.pos + 1, end), 16));
            this.pos = end + 1;
          } else {
            out += String.fromCharCode(parseInt(s.slice(this.pos, this.pos + 4), 16));
            this.pos += 4;
          }
          break;
        case '\n': break;
        default: out += e;
      }
    }
  }

  private key(): string {
    this.ws();
    const c = this.s[this.pos];
    if (c === '"' || c === "'") return this.string();
    const m = /^[A-Za-z_$][\w$]*|^\d+/.exec(this.s.slice(this.pos, this.pos + 256));
    if (!m) this.fail('expected a property name');
    this.pos += m[0].length;
    return m[0];
  }

  private object(): Record<string, unknown> {
    this.pos++;
    const out: Record<string, unknown> = {};
    this.ws();
    if (this.s[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      const k = this.key();
      this.ws();
      if (this.s[this.pos] !== ':') this.fail('expected ":"');
      this.pos++;
      const v = this.value();
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.s[this.pos++];
      if (c === '}') return out;
      if (c !== ',') this.fail('expected "," or "}"');
      this.ws();
      if (this.s[this.pos] === '}') {
        this.pos++;
        return out;
      }
    }
  }

  private array(): unknown[] {
    this.pos++;
    const out: unknown[] = [];
    this.ws();
    if (this.s[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s[this.pos++];
      if (c === ']') return out;
      if (c !== ',') this.fail('expected "," or "]"');
      this.ws();
      if (this.s[this.pos] === ']') {
        this.pos++;
        return out;
      }
    }
  }
}

/** Parses the literal starting at `start` (a `{`, `[` or quote); returns it and where it ends. */
export function parseLiteralAt(text: string, start: number): { value: unknown; end: number } {
  const p = new Parser(text, start);
  const value = p.value();
  return { value, end: p.pos };
}

/**
 * The object literal that holds `key` as one of its own properties (e.g. the model JSON around
 * `modelTopology`), found in script text without executing it.
 */
export function findObjectWithKey(text: string, key: string): Record<string, unknown> | undefined {
  const re = new RegExp(`(?:["']${key}["']|\\b${key})\\s*:`, 'g');
  const budget = SEARCH_PASSES * text.length + SEARCH_SLACK;
  let spent = 0;
  // A literal's parse depends only on where it starts: each brace is parsed at most once.
  const parsed = new Map<number, { value: unknown; end: number } | undefined>();
  const parseAt = (brace: number): { value: unknown; end: number } | undefined => {
    if (parsed.has(brace)) return parsed.get(brace);
    const p = new Parser(text, brace);
    let result: { value: unknown; end: number } | undefined;
    try {
      result = { value: p.value(), end: p.pos };
    } catch (e) {
      if (!(e instanceof LiteralError) && !(e instanceof RangeError)) throw e;
      // not a literal from here
    }
    spent += Math.max(p.pos - brace, 1);
    if (spent > budget) throw new SearchBudgetError(`gave up looking for the ${key} literal after parsing ${spent} characters of a ${text.length}-character script`);
    parsed.set(brace, result);
    return result;
  };
  for (let m = re.exec(text); m; m = re.exec(text)) {
    let brace = text.lastIndexOf('{', m.index);
    for (let tries = 0; brace >= 0 && tries < 64; tries++, brace = text.lastIndexOf('{', brace - 1)) {
      const r = parseAt(brace);
      if (r && r.end > m.index && r.value && typeof r.value === 'object' && !Array.isArray(r.value) && key in r.value) return r.value as Record<string, unknown>;
    }
  }
  return undefined;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The longest string literal of the script that is base64 (a weights module's payload). */
export function largestBase64String(text: string): Buffer | undefined {
  // A scan, not a regular expression: a payload of megabytes overflows the regex engine's stack.
  let best: string | undefined;
  let i = 0;
  while (i < text.length) {
    const q = text[i];
    if (q !== '"' && q !== "'" && q !== '`') {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < text.length && isBase64Char(text.charCodeAt(j))) j++;
    if (text[j] === q && j - i - 1 >= 16) {
      const body = text.slice(i + 1, j).replace(/\\\n|\s/g, '');
      if (BASE64.test(body) && body.length % 4 === 0 && (!best || body.length > best.length)) best = body;
      i = j + 1;
    } else i = j > i + 1 ? j : i + 1;
  }
  return best === undefined ? undefined : Buffer.from(best, 'base64');
}

/** [A-Za-z0-9+/=], white space and the backslash of a line continuation. */
function isBase64Char(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 61 || c === 92 || c === 32 || c === 10 || c === 13 || c === 9;
}
