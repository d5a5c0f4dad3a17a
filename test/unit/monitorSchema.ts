// The balance-log schema, compiled once for the monitor tests.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';

const ajv = new Ajv2020({ allErrors: true, strict: false });
export const validateRecord = ajv.compile(JSON.parse(readFileSync(join(__dirname, '..', '..', 'server', 'schemas', 'balance-log.schema.json'), 'utf8')));

/** Throws naming the file, line and schema errors of the first invalid line. */
export function assertLogValid(file: string): number {
  const lines = readFileSync(file, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, i) => {
    if (!validateRecord(JSON.parse(line))) throw new Error(`${file}:${i + 1}: ${ajv.errorsText(validateRecord.errors)}`);
  });
  return lines.length;
}
