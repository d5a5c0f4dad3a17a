import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bfloat16ToNumber, float16ToNumber, numberToBfloat16, numberToFloat16 } from '../../server/src/tensor/dtype';

describe('half-precision conversions', () => {
  it('float16 encodes known values and rounds to nearest even', () => {
    assert.equal(numberToFloat16(1), 0x3c00);
    assert.equal(numberToFloat16(-2), 0xc000);
    assert.equal(numberToFloat16(65504), 0x7bff);
    assert.equal(numberToFloat16(1e6), 0x7c00);
    assert.equal(numberToFloat16(2 ** -24), 0x0001);
    assert.equal(numberToFloat16(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(numberToFloat16(1 + 3 * 2 ** -11), 0x3c02);
    assert.ok(Number.isNaN(float16ToNumber(numberToFloat16(NaN))));
  });

  it('float16 round-trips every finite value', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = float16ToNumber(h);
      if (!Number.isFinite(v)) continue;
      const back = numberToFloat16(v);
      assert.ok(back === h || (v === 0 && (back & 0x7fff) === 0), `0x${h.toString(16)}`);
    }
  });

  it('bfloat16 encodes known values and round-trips', () => {
    assert.equal(numberToBfloat16(1), 0x3f80);
    assert.equal(numberToBfloat16(-0.5), 0xbf00);
    assert.equal(bfloat16ToNumber(0x4049), 3.140625);
    for (let h = 0; h < 0x10000; h += 7) {
      const v = bfloat16ToNumber(h);
      if (Number.isFinite(v)) assert.equal(numberToBfloat16(v), h);
    }
  });
});
