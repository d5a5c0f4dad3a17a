// Before prepareKeras() has loaded h5wasm, Keras files fail with a message that says so
// (this file runs in its own process, where nothing has loaded it).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { kerasH5Format, kerasReady, kerasZipFormat } from '../../server/src/formats/keras/index';
import { fixture } from '../fixtures/keras/helpers';

it('opening a Keras file before prepareKeras() names the file and the missing step', () => {
  assert.equal(kerasReady(), false);
  for (const [format, file] of [[kerasH5Format, 'mlp_seq.h5'], [kerasZipFormat, 'mlp_seq.keras']] as const) {
    const p = fixture(file);
    assert.throws(() => format.open(p), (e: Error) => e.message.startsWith(p) && /await prepareKeras\(\)/.test(e.message));
  }
});
