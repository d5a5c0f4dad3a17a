// Damaged real files through the whole command line: each either still works, or gives one
// clear error line naming the file, exit code 2, and leaves no output file behind.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../server/src/cli';
import { rng } from '../../server/src/engine/random';
import { FORMATS } from '../../server/src/formats/registry';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const CASES_PER_FILE = 24;
/** Messages that betray an internal failure rather than a diagnosis of the file. */
const INTERNAL = /Cannot read propert|is not a function|is not iterable|Maximum call stack|Invalid array length|Invalid typed array length|TypeError|RangeError|ReferenceError|\bundefined\b|\bNaN\b/;

const known = new Set(FORMATS.flatMap((f) => f.extensions));
const FILES = readdirSync(MODELS).filter((f) => {
  const ext = f.split('.').pop()!;
  return known.has(ext) && !f.endsWith('.io.json') && f !== 'MANIFEST.json' && !f.endsWith('.index.json') && !f.includes('external');
});

type Mutation = (b: Buffer, rand: () => number) => Buffer;

const truncate: Mutation = (b, rand) => b.subarray(0, Math.floor(rand() * b.length));
const flip: Mutation = (b, rand) => {
  const c = Buffer.from(b);
  for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) c[Math.floor(rand() * c.length)] ^= 1 << Math.floor(rand() * 8);
  return c;
};
/** Makes a length-like little-endian integer near the start or the end much larger. */
const grow: Mutation = (b, rand) => {
  const c = Buffer.from(b);
  const nearEnd = rand() < 0.5 && c.length > 64;
  const at = nearEnd ? c.length - 4 - Math.floor(rand() * Math.min(60, c.length - 4)) : Math.floor(rand() * Math.min(60, c.length - 4));
  c.writeUInt32LE(Math.min(0xffffffff, c.readUInt32LE(at) * 16 + 4096), at);
  return c;
};
const MUTATIONS: [string, Mutation][] = [['truncated', truncate], ['flipped', flip], ['grown', grow]];

describe('damaged files', () => {
  for (const file of FILES) {
    it(`${file}: ${CASES_PER_FILE} damaged copies`, async () => {
      const original = readFileSync(join(MODELS, file));
      const rand = rng(original.length);
      const outcomes = { worked: 0, refused: 0 };
      for (let k = 0; k < CASES_PER_FILE; k++) {
        const [what, mutate] = MUTATIONS[k % MUTATIONS.length];
        const dir = scratchDir('synbal-fuzz-');
        const path = join(dir, file);
        writeFileSync(path, mutate(original, rand));
        if (existsSync(join(MODELS, `${file}.synbal.json`))) copyFileSync(join(MODELS, `${file}.synbal.json`), `${path}.synbal.json`);
        const out = join(dir, 'out.bin');
        let err = '';
        let said = '';
        const code = await main(['balance', path, '--activation', 'relu', '-o', out], { out: (t) => (said += t), err: (t) => (err += t) });
        const label = `${what} copy ${k}`;
        if (code === 0) {
          outcomes.worked++;
          // Damage can leave nothing to balance (a renamed tensor breaks the layer chain): then
          // the command says so and writes nothing.
          assert.ok(existsSync(out) || /no balanceable units, nothing written/.test(said), `${label}: success without output: ${said}`);
        } else {
          outcomes.refused++;
          assert.equal(code, 2, `${label}: exit ${code}`);
          const lines = err.trimEnd().split('\n');
          assert.equal(lines.length, 1, `${label}: ${err}`);
          assert.ok(lines[0].startsWith(`synbal: ${path}`), `${label}: the error names the file: ${lines[0]}`);
          assert.doesNotMatch(lines[0], INTERNAL, `${label}: ${lines[0]}`);
          assert.ok(!existsSync(out), `${label}: no output after an error`);
        }
        assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], `${label}: no temporary files left`);
      }
      assert.ok(outcomes.refused > 0, 'some damage is detected');
    });
  }
});
