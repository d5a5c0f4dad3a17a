// ONNX TensorProto.DataType codes and what the checkpoint layer calls them.
import type { StoredDType } from '../core/checkpoint';

interface OnnxType {
  name: string;
  stored: StoredDType;
  /** Bytes per element in raw_data; fractional for 4-bit types, 0 for strings. */
  bytes: number;
}

const TYPES: Record<number, OnnxType> = {
  1: { name: 'FLOAT', stored: 'float32', bytes: 4 },
  2: { name: 'UINT8', stored: 'uint8', bytes: 1 },
  3: { name: 'INT8', stored: 'int8', bytes: 1 },
  4: { name: 'UINT16', stored: 'other', bytes: 2 },
  5: { name: 'INT16', stored: 'int16', bytes: 2 },
  6: { name: 'INT32', stored: 'int32', bytes: 4 },
  7: { name: 'INT64', stored: 'int64', bytes: 8 },
  8: { name: 'STRING', stored: 'other', bytes: 0 },
  9: { name: 'BOOL', stored: 'bool', bytes: 1 },
  10: { name: 'FLOAT16', stored: 'float16', bytes: 2 },
  11: { name: 'DOUBLE', stored: 'float64', bytes: 8 },
  12: { name: 'UINT32', stored: 'other', bytes: 4 },
  13: { name: 'UINT64', stored: 'other', bytes: 8 },
  14: { name: 'COMPLEX64', stored: 'complex64', bytes: 8 },
  15: { name: 'COMPLEX128', stored: 'other', bytes: 16 },
  16: { name: 'BFLOAT16', stored: 'bfloat16', bytes: 2 },
  17: { name: 'FLOAT8E4M3FN', stored: 'float8', bytes: 1 },
  18: { name: 'FLOAT8E4M3FNUZ', stored: 'float8', bytes: 1 },
  19: { name: 'FLOAT8E5M2', stored: 'float8', bytes: 1 },
  20: { name: 'FLOAT8E5M2FNUZ', stored: 'float8', bytes: 1 },
  21: { name: 'UINT4', stored: 'other', bytes: 0.5 },
  22: { name: 'INT4', stored: 'other', bytes: 0.5 },
  23: { name: 'FLOAT4E2M1', stored: 'other', bytes: 0.5 },
};

export function onnxType(code: number): OnnxType | undefined {
  return TYPES[code];
}

export const ONNX_FLOAT = 1;
export const ONNX_FLOAT16 = 10;
export const ONNX_DOUBLE = 11;
export const ONNX_BFLOAT16 = 16;

/** The TensorProto field that holds this type's values when raw_data is not used. */
export function typedFieldOf(code: number): number {
  switch (code) {
    case 1:
    case 14:
      return 4; // float_data
    case 11:
    case 15:
      return 10; // double_data
    case 7:
      return 7; // int64_data
    case 8:
      return 6; // string_data
    case 12:
    case 13:
      return 11; // uint64_data
    default:
      return 5; // int32_data: int8..int32, bool, float16, bfloat16, float8, 4-bit types
  }
}
