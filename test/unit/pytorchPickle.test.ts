// The restricted unpickler on its own: every protocol's opcodes (byte strings made once by
// CPython 3.11's pickle.dumps and pasted here), integers of every width, and the ways a
// damaged or hostile pickle must fail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PickleError, decodeLong, unpickle, type UnpickleHooks } from '../../server/src/formats/pytorch/pickle';
import { BufferSource } from '../../server/src/formats/pytorch/source';
import { TorchUnpickler } from '../../server/src/formats/pytorch/torchGlobals';
import { PyDict, PyGlobal, PyObject, PySet, isTuple } from '../../server/src/formats/pytorch/values';

const inert: UnpickleHooks = { findGlobal: (m, n) => new PyGlobal(m, n) };
const run = (hex: string, hooks: UnpickleHooks = new TorchUnpickler()): unknown => unpickle(new BufferSource(Buffer.from(hex, 'hex')), hooks);
const runLatin1 = (s: string, hooks: UnpickleHooks = new TorchUnpickler()): unknown => unpickle(new BufferSource(Buffer.from(s, 'latin1')), hooks);

// pickle.dumps({'a': [1, -1, 2**40, -2**40, 2**70, -2**70, 255, 256, 65536, -129], 'b': (1.5, -0.0, inf),
//   'c': 'héllo', 'd': b'\x00\xff', 'e': {1, 2}, 'f': None, 'g': True, 'h': frozenset([3])}, protocol=p)
const VECTORS: Record<number, string> = {
  0: '286470300a56610a70310a286c70320a49310a61492d310a614c313039393531313632373737364c0a614c2d313039393531313632373737364c0a614c313138303539313632303731373431313330333432344c0a614c2d313138303539313632303731373431313330333432344c0a61493235350a61493235360a614936353533360a61492d3132390a617356620a70330a2846312e350a462d302e300a46696e660a7470340a7356630a70350a5668e96c6c6f0a70360a7356640a70370a635f636f646563730a656e636f64650a70380a28565c7530303030ff0a70390a566c6174696e310a7031300a747031310a527031320a7356650a7031330a635f5f6275696c74696e5f5f0a7365740a7031340a28286c7031350a49310a6149320a61747031360a527031370a7356660a7031380a4e7356670a7031390a4930310a7356680a7032300a635f5f6275696c74696e5f5f0a66726f7a656e7365740a7032310a28286c7032320a49330a61747032330a527032340a732e',
  1: '7d71002858010000006171015d7102284b014affffffff4c313039393531313632373737364c0a4c2d313039393531313632373737364c0a4c313138303539313632303731373431313330333432344c0a4c2d313138303539313632303731373431313330333432344c0a4bff4d00014a000001004a7fffffff65580100000062710328473ff8000000000000478000000000000000477ff00000000000007471045801000000637105580600000068c3a96c6c6f71065801000000647107635f636f646563730a656e636f64650a710828580300000000c3bf710958060000006c6174696e31710a74710b52710c580100000065710d635f5f6275696c74696e5f5f0a7365740a710e285d710f284b014b026574711052711158010000006671124e58010000006771134930310a5801000000687114635f5f6275696c74696e5f5f0a66726f7a656e7365740a7115285d71164b0361747117527118752e',
  2: '80027d71002858010000006171015d7102284b014affffffff8a060000000000018a060000000000ff8a090000000000000000408a090000000000000000c04bff4d00014a000001004a7fffffff655801000000627103473ff8000000000000478000000000000000477ff00000000000008771045801000000637105580600000068c3a96c6c6f71065801000000647107635f636f646563730a656e636f64650a7108580300000000c3bf710958060000006c6174696e31710a86710b52710c580100000065710d635f5f6275696c74696e5f5f0a7365740a710e5d710f284b014b026585711052711158010000006671124e5801000000677113885801000000687114635f5f6275696c74696e5f5f0a66726f7a656e7365740a71155d71164b0361857117527118752e',
  3: '80037d71002858010000006171015d7102284b014affffffff8a060000000000018a060000000000ff8a090000000000000000408a090000000000000000c04bff4d00014a000001004a7fffffff655801000000627103473ff8000000000000478000000000000000477ff00000000000008771045801000000637105580600000068c3a96c6c6f71065801000000647107430200ff71085801000000657109636275696c74696e730a7365740a710a5d710b284b014b026585710c52710d580100000066710e4e580100000067710f885801000000687110636275696c74696e730a66726f7a656e7365740a71115d71124b0361857113527114752e',
  4: '8004959f000000000000007d94288c0161945d94284b014affffffff8a060000000000018a060000000000ff8a090000000000000000408a090000000000000000c04bff4d00014a000001004a7fffffff658c016294473ff8000000000000478000000000000000477ff000000000000087948c0163948c0668c3a96c6c6f948c016494430200ff948c0165948f94284b014b02908c0166944e8c016794888c016894284b039194752e',
  5: '8005959f000000000000007d94288c0161945d94284b014affffffff8a060000000000018a060000000000ff8a090000000000000000408a090000000000000000c04bff4d00014a000001004a7fffffff658c016294473ff8000000000000478000000000000000477ff000000000000087948c0163948c0668c3a96c6c6f948c016494430200ff948c0165948f94284b014b02908c0166944e8c016794888c016894284b039194752e',
};

describe('restricted unpickler: protocols 0–5', () => {
  for (const [protocol, hex] of Object.entries(VECTORS)) {
    it(`protocol ${protocol}: values, integers beyond 2^53, bytes, sets`, () => {
      const d = run(hex);
      assert.ok(d instanceof PyDict);
      assert.deepEqual(d.get('a'), [1, -1, 2 ** 40, -(2 ** 40), 2n ** 70n, -(2n ** 70n), 255, 256, 65536, -129]);
      const b = d.get('b');
      assert.ok(isTuple(b));
      assert.equal(b[0], 1.5);
      assert.ok(Object.is(b[1], -0));
      assert.equal(b[2], Infinity);
      assert.equal(d.get('c'), 'héllo');
      assert.deepEqual(Array.from(d.get('d') as Uint8Array), [0, 255]);
      const e = d.get('e');
      assert.ok(e instanceof PySet);
      assert.deepEqual(e.items, [1, 2]);
      assert.equal(d.get('f'), null);
      assert.equal(d.get('g'), true);
      assert.ok(d.get('h') instanceof PySet && (d.get('h') as PySet).frozen);
    });
  }

  it('LONG1/LONG4 are little-endian two’s complement', () => {
    assert.equal(decodeLong(Uint8Array.from([])), 0);
    assert.equal(decodeLong(Uint8Array.from([0xff])), -1);
    assert.equal(decodeLong(Uint8Array.from([0x00, 0x80])), -32768);
    assert.equal(decodeLong(Uint8Array.from([0xff, 0x00])), 255);
    assert.equal(decodeLong(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00])), Number.MAX_SAFE_INTEGER);
    assert.equal(decodeLong(Uint8Array.from([0, 0, 0, 0, 0, 0, 0x20, 0])), 2n ** 53n);
    assert.equal(decodeLong(Uint8Array.from([0x01, 0, 0, 0, 0, 0, 0xe0, 0xff])), -(2 ** 53) + 1);
    // LONG4 with a 9-byte body: -2**64
    assert.equal(run('80028b09000000' + '0000000000000000ff' + '2e'), -(2n ** 64n));
    // The legacy format's magic number.
    assert.equal(run('80028a0a6cfc9c46f9206aa850192e'), 0x1950a86a20f9469cfc6cn);
  });

  it('protocol 0 text opcodes: STRING escapes, INST, memo by text', () => {
    assert.equal(runLatin1("S'a\\'b\\\\c\\x41\\n'\np0\n."), "a'b\\cA\n");
    const obj = runLatin1("(I7\nS'x'\nimy.module\nThing\np0\n0g0\n.", inert);
    assert.ok(obj instanceof PyObject);
    assert.equal(obj.cls.qualifiedName, 'my.module.Thing');
    assert.deepEqual(obj.args, [7, 'x']);
    assert.equal(obj.via, 'new');
  });

  it('protocol 1 modules come through copyreg._reconstructor as inert objects with their state', () => {
    const hooks = new TorchUnpickler();
    const v = runLatin1('ccopy_reg\n_reconstructor\n(cmy.models\nNet\nc__builtin__\nobject\nNtR}X\x08\x00\x00\x00trainingI01\nsb.', hooks);
    assert.ok(v instanceof PyObject);
    assert.equal(v.cls.qualifiedName, 'my.models.Net');
    assert.equal(v.via, 'new');
    assert.equal((v.state as PyDict).get('training'), true);
    assert.deepEqual([...hooks.placeholders.keys()], ['my.models.Net']);
  });

  it('BUILD on a dict keeps attributes apart from the items (state dict _metadata)', () => {
    // OrderedDict() with one item, then BUILD {'_metadata': {'': {'version': 1}}}
    const hooks = new TorchUnpickler();
    const d = runLatin1('\x80\x02ccollections\nOrderedDict\n)RX\x01\x00\x00\x00kK\x05s}X\x09\x00\x00\x00_metadata}X\x00\x00\x00\x00}X\x07\x00\x00\x00versionK\x01sssb.', hooks);
    assert.ok(d instanceof PyDict);
    assert.deepEqual([...d.entries()], [['k', 5]]);
    assert.ok(d.attrs?.get('_metadata') instanceof PyDict);
  });

  it('a "__proto__" key is a Map key, not a prototype', () => {
    const d = runLatin1('\x80\x02}X\x09\x00\x00\x00__proto__}X\x08\x00\x00\x00pollutedK\x01ss.');
    assert.ok(d instanceof PyDict);
    assert.ok((d.get('__proto__') as PyDict).get('polluted') === 1);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(d), PyDict.prototype);
  });

  it('calling an inert global records the call and runs nothing, even chained', () => {
    // getattr(builtins, 'eval')('...') : REDUCE of a placeholder call result
    const hooks = new TorchUnpickler();
    const v = runLatin1("\x80\x02cbuiltins\ngetattr\ncbuiltins\n__import__\nX\x02\x00\x00\x00os\x85R X\x06\x00\x00\x00system\x86RX\x02\x00\x00\x00id\x85R.".replace(' ', ''), hooks);
    assert.ok(v instanceof PyObject);
    assert.deepEqual(v.args, ['id']);
    assert.deepEqual([...hooks.placeholders.keys()], ['builtins.getattr', 'builtins.__import__']);
    const w = hooks.warnings().join('\n');
    assert.match(w, /pickle global builtins\.getattr was not run/);
    assert.match(w, /pickle global builtins\.__import__ was not run/);
  });

  it('damaged pickles fail with PickleError, never another exception', () => {
    const bad: [string, RegExp][] = [
      ['80022e', /stack underflow/],
      ['8002680052', /memo entry 0/],
      ['8002ff', /unknown opcode 0xff/],
      ['8002820100', /extension registry/],
      ['800258ffffff7f', /runs past the end/],
      ['80024b', /ends early/],
      ['8006', /protocol 6/],
      ['80024b014b0261', /cannot append to the number 1/],
      ['80024b014b0152', /call arguments must be a tuple/],
      ['800274', /MARK expected/],
      ['8002', /ends early/],
      ['80028c01', /ends early|runs past/],
      ['80024b01284b0290', /cannot add items/],
    ];
    for (const [hex, re] of bad) {
      assert.throws(() => run(hex), (e: Error) => e instanceof PickleError && re.test(e.message), hex);
    }
  });

  it('persistent ids are refused where none may appear', () => {
    assert.throws(() => run('80024b0151', inert), /persistent id/);
  });
});
