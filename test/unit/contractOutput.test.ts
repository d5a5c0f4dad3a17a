// The balanced output's name (contract/output.ts) against what node:path made of it before:
// `<stem>.balanced.<ext>` beside the input, the format's extension for a file without one.
import assert from 'node:assert/strict';
import { basename, dirname, extname, join } from 'node:path';
import { describe, it } from 'node:test';
import { balancedFileName } from '../../server/src/contract/output';
import { defaultOutputPath } from '../../server/src/formats/core/safeWrite';

/** The former server implementation, with node:path. */
function byNodePath(input: string, extension: string): string {
  const ext = extname(input);
  const stem = basename(input, ext);
  return join(dirname(input), `${stem}.balanced.${ext ? ext.slice(1) : extension}`);
}

describe('balanced output names', () => {
  const names = ['model.onnx', 'a.b.pt', 'w.safetensors', 'noext', '.hidden', '.hidden.pt', '..', '..x', '...x', 'a.', 'a..b', 'spaced name.h5', 'epoch=3-step=1200.ckpt'];

  it("name the file as node:path's basename/extname did", () => {
    for (const n of names) for (const ext of ['', 'onnx']) assert.equal(balancedFileName(n, ext), basename(byNodePath(`/models/${n}`, ext)), `${n} (${ext})`);
  });

  it('put it beside the input, as before', () => {
    for (const n of names) for (const ext of ['', 'onnx']) for (const dir of ['/models', 'rel/dir', '.']) assert.equal(defaultOutputPath(join(dir, n), ext), byNodePath(join(dir, n), ext), `${dir}/${n}`);
  });
});
