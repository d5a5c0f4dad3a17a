// Small files, big damage: hostile inputs built byte by byte (test/support/hostileFiles.ts)
// that once hung a reader, blew its stack, or drove it to gigabytes. Each must now end in one
// clear FileError (or open with a warning, where the file is harmless) within bounded time and
// memory, measured in this process: bounds generous enough for a slow machine, far below what
// the old behaviour cost (minutes, or 4–6 GB).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FileError } from '../../server/src/errors/fileError';
import { openModel } from '../../server/src/formats/registry';
import { openTfjs } from '../../server/src/formats/tfjs/read';
import { MAX_PICKLE_WORK, PickleError, unpickle } from '../../server/src/formats/pytorch/pickle';
import { BufferSource } from '../../server/src/formats/pytorch/source';
import { TorchUnpickler } from '../../server/src/formats/pytorch/torchGlobals';
import { parseNpyHeader } from '../../server/src/formats/numpy/index';
import { findObjectWithKey } from '../../server/src/formats/tfjs/jsLiteral';
import * as H from '../support/hostileFiles';
import { scratchDir } from '../support/scratch';

const work = scratchDir('synbal-bombs-');
let serial = 0;
const file = (name: string): string => join(work, `${serial++}-${name}`);
const storage = { '0': H.f32([1, 2, 3, 4]) };

const MAX_MS = 10_000;
const MAX_GROWTH = 768 * 1024 * 1024;

/** Runs `f`, asserting it took under MAX_MS and grew RSS and the heap by under MAX_GROWTH. */
function bounded<T>(what: string, f: () => T): T {
  const before = process.memoryUsage();
  const t0 = performance.now();
  try {
    return f();
  } finally {
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    assert.ok(ms < MAX_MS, `${what}: took ${ms.toFixed(0)} ms`);
    assert.ok(after.rss - before.rss < MAX_GROWTH, `${what}: RSS grew by ${((after.rss - before.rss) / 2 ** 20).toFixed(0)} MB`);
    assert.ok(after.heapUsed - before.heapUsed < MAX_GROWTH, `${what}: heap grew by ${((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(0)} MB`);
  }
}

function refused(path: string, re: RegExp, open: (p: string) => unknown = (p) => openModel(p)): void {
  bounded(path, () =>
    assert.throws(
      () => open(path),
      (e: Error) => {
        assert.equal(e.constructor, FileError, `${e.constructor.name}: ${e.message}`);
        assert.ok(e.message.startsWith(`${path}: `) || e.message.startsWith(`${path} (`), e.message);
        assert.doesNotMatch(e.message, /\n|Maximum call stack|out of range|Invalid (string|array) length/);
        assert.match(e.message, re);
        return true;
      },
    ),
  );
}


describe('hostile pickles: shared and nested structure', () => {
  it('a DAG of 200 lists, each holding the one before twice (2^200 paths): opens, walked once', () => {
    const path = torchZipFile('dag.pt', H.sharedDagPickle(200));
    const cp = bounded('dag', () => openModel(path).checkpoint);
    assert.deepEqual(cp.tensors.map((t) => t.name), ['weight']);
  });

  it('a module attribute list shared 100 000 times: each container searched once', () => {
    // {'weight': tensor, 'a0'…'aN': the same 100 000-item list}: a search per key was N × items.
    const p = new H.Pickle().raw('}').str('weight').tensor({ key: '0', numel: 4, shape: [4] }).raw('s');
    p.raw('(').raw(Buffer.alloc(100_000, 0x4e)).raw('l').put(0).raw('0');
    p.raw('(');
    for (let i = 0; i < 100_000; i++) p.str(`a${i}`).get(0);
    const path = torchZipFile('shared.pt', p.raw('u').done());
    const cp = bounded('shared', () => openModel(path).checkpoint);
    assert.equal(cp.tensors.length, 1);
  });

  it('100 000 nested lists: opens with a depth warning, no stack overflow', () => {
    const path = torchZipFile('deep.pt', H.deepListPickle(100_000));
    const cp = bounded('deep', () => openModel(path).checkpoint);
    assert.deepEqual(cp.tensors.map((t) => t.name), ['weight']);
    assert.ok(cp.warnings.some((w) => /nests deeper than 200 levels/.test(w) && w.length < 400), cp.warnings.join('\n'));
  });

  it('a list that contains itself: opens, no loop', () => {
    const path = torchZipFile('self.pt', H.selfListPickle());
    const cp = bounded('self', () => openModel(path).checkpoint);
    assert.deepEqual(cp.tensors.map((t) => t.name), ['weight']);
  });

  it('a legacy checkpoint with 100 000 nested lists: refused for its missing storage, not its nesting', () => {
    const path = H.legacyFile(file('deep-legacy.pt'), H.deepListPickle(100_000).subarray(0), []);
    // No storage keys: the tensor's storage is missing, which is the error; the nesting is not.
    refused(path, /storage 0/);
  });
});

describe('allocation bombs', () => {
  it('LONG4 / BINUNICODE8 / BINBYTES8 declaring more bytes than the pickle has: refused before allocating', () => {
    for (const op of ['LONG4', 'BINUNICODE8', 'BINBYTES8'] as const) {
      const declared = op === 'LONG4' ? 0x7fffffff : 2 ** 50;
      refused(torchZipFile(`${op}.pt`, H.lengthPickle(op, declared, 16)), /runs past the end of the data|bytes \(more than/);
      refused(H.legacyFile(file(`${op}-legacy.pt`), H.lengthPickle(op, declared, 16)), /runs past the end of the data|bytes \(more than/);
    }
  });

  it('a 64 MB LONG4 (present, deflated to 64 KB): refused without decoding it', () => {
    refused(torchZipFile('long4-64m.pt', H.lengthPickle('LONG4', 64 << 20), true), /1000:1/);
    // In memory, past the zip's ratio limit: the unpickler's own length limit.
    const buf = H.lengthPickle('LONG4', 64 << 20);
    bounded('long4 unpickle', () => assert.throws(() => unpickle(new BufferSource(buf), new TorchUnpickler()), (e: Error) => e instanceof PickleError && /an integer of 67108864 bytes/.test(e.message)));
    refused(torchZipFile('long4-2k.pt', H.lengthPickle('LONG4', 2048)), /an integer of 2048 bytes/);
  });

  it('64 MB strings and bytes (present): cost about their size', () => {
    for (const op of ['BINUNICODE8', 'BINBYTES8'] as const) {
      const buf = H.lengthPickle(op, 64 << 20);
      bounded(op, () => unpickle(new BufferSource(buf), new TorchUnpickler()));
    }
  });

  it('a pickle of nothing but empty lists: stopped by the work budget', () => {
    const buf = H.manyListsPickle(100 << 20);
    bounded('lists', () => assert.throws(() => unpickle(new BufferSource(buf), new TorchUnpickler()), (e: Error) => e instanceof PickleError && e.message.includes(String(MAX_PICKLE_WORK))));
    refused(torchZipFile('lists.pt', H.manyListsPickle(16 << 20)), /too much/);
  });

  it('a ~500 B pickle claiming a 4 GB tensor through stride-0 views: refused', () => {
    const path = torchZipFile('stride0.pt', H.strideZeroPickle([1 << 15, 1 << 15]));
    refused(path, /claims 1073741824 elements .* holds 16 bytes: a view that repeats/);
  });

  it('a small stride-0 view: read-only with its reason, decoded', () => {
    const path = torchZipFile('stride0-small.pt', H.strideZeroPickle([3, 4]));
    const cp = bounded('stride0 small', () => openModel(path).checkpoint);
    const t = cp.tensors[0];
    assert.match(t.readOnlyReason ?? '', /repeats elements/);
    assert.deepEqual([...(t.decoded?.data ?? [])], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('many transposed views of one storage: decoding stops at the budget', () => {
    const n = 100;
    const big = Buffer.alloc(4 << 20);
    const p = new H.Pickle().raw('}');
    for (let i = 0; i < n; i++) p.str(`w${i}`).tensor({ key: '0', numel: 1 << 20, shape: [1024, 1024], stride: [1, 1024] }).raw('s');
    const path = H.torchZip(file('views.pt'), p.done(), { '0': big });
    const cp = bounded('views', () => openModel(path).checkpoint);
    assert.equal(cp.tensors.length, n);
    assert.equal(cp.tensors.filter((t) => t.decoded).length, 64); // 256 MiB of 4 MiB views
    assert.match(cp.tensors[n - 1].readOnlyReason ?? '', /not decoded/);
  });
});

describe('decompression bombs', () => {
  it('a zip checkpoint whose deflated data.pkl inflates to 256 MB (261 KB on disk): refused', () => {
    refused(torchZipFile('bomb.pt', H.manyListsPickle(256 << 20), true), /1000:1|more than the 268435456/);
  });

  it('an .npz inflating to 256 MB (about 1030:1): refused before inflating', () => {
    const path = file('bomb.npz');
    H.writeZip(path, [{ name: 'a.npy', data: H.npyBytes([64 << 20]), deflate: true }]);
    refused(path, /1000:1/);
  });

  it('an .npz declaring 2 GB of arrays: refused at the memory budget before inflating', () => {
    // The 2 MB file that inflates to 2 GB is the same refusal; a directory that declares the
    // size is built here in milliseconds instead of deflating 2 GB.
    const path = file('budget.npz');
    const size = H.writeZip(path, [{ name: 'a.npy', data: H.npyBytes([16]), deflate: true }]);
    const bytes = readFileSync(path);
    const central = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bytes.writeUInt32LE(2 ** 31 + 128, central + 24);
    assert.equal(bytes.length, size);
    writeFileSync(path, bytes);
    refused(path, /inflates to 2147483776 bytes.*536870912/);
  });

  it('an .npz array whose shape does not match its inflated size: refused', () => {
    const path = file('short.npz');
    H.writeZip(path, [{ name: 'a.npy', data: H.npyBytes([16], 80), deflate: true }]);
    refused(path, /needs 64 bytes of data, but the entry inflates to 80/);
  });

  it('a 20 000-deep .npy shape tuple: refused, no stack overflow', () => {
    const path = file('deep.npy');
    writeFileSync(path, H.deepNpyBytes(20_000));
    refused(path, /nests deeper than 8 levels/);
    bounded('header', () => assert.throws(() => parseNpyHeader(H.deepNpyBytes(20_000), 1 << 20, 'x.npy'), FileError));
  });
});

describe('TF.js modules', () => {
  it('a 30 KB module of 2000 nested modelTopology objects: refused in well under a second', () => {
    const path = file('model.js');
    writeFileSync(path, H.hostileTfjsModule(2000));
    const t0 = performance.now();
    refused(path, /gave up looking for the modelTopology literal/, openTfjs);
    assert.ok(performance.now() - t0 < 3000);
  });

  it('the search still finds a model literal after decoys', () => {
    const text = `var x={a:{b:1}};var y="{";\nexport default {format:"layers-model",modelTopology:{class_name:"Sequential"},weightsManifest:[]};`;
    assert.deepEqual(findObjectWithKey(text, 'modelTopology')?.modelTopology, { class_name: 'Sequential' });
  });
});

function torchZipFile(name: string, pickle: Buffer, deflate = false): string {
  return H.torchZip(file(name), pickle, storage, deflate);
}
