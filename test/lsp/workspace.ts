// Throw-away workspaces of checkpoints for the protocol tests.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { other, relu } from '../../server/src/engine/activation';
import { EXAMPLES } from '../../server/src/cli/commands';
import { mlp } from '../../server/src/examples/networks';
import { networkToJson } from '../../server/src/formats/networkJson';
import { scratchDir } from '../support/scratch';

export function exampleJson(name: keyof typeof EXAMPLES): string {
  return networkToJson(EXAMPLES[name]());
}

/** An MLP whose first hidden layer is tanh (its units cannot be balanced) and second ReLU. */
export function tanhJson(): string {
  return networkToJson(mlp({ name: 'tanh then relu', sizes: [4, 6, 5, 3], seed: 5, std: 0.5, activation: (l) => (l === 0 ? other('tanh') : relu()) }));
}

/** A network description whose first tensor's values do not fill its shape. */
export function malformedJson(): string {
  const doc = JSON.parse(exampleJson('mlp'));
  doc.tensors[0].shape = [doc.tensors[0].shape[0] + 1, doc.tensors[0].shape[1]];
  return JSON.stringify(doc);
}

/** A temporary folder holding `files`, removed when the test process exits. */
export function makeWorkspace(files: Record<string, string | Buffer>): string {
  const root = scratchDir('synbal-lsp-');
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  for (const [rel, content] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
  return root;
}
