// Globs as VS Code settings write them (`**/*.{onnx,pt}`, `models/*.safetensors`), matched
// against paths relative to a workspace folder with forward slashes.

function escape(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

function translate(glob: string): string {
  let re = '';
  let depth = 0;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        // `**/` spans zero or more whole folders; any other `**` spans anything.
        const wholeFolders = (i === 0 || glob[i - 1] === '/') && glob[i + 2] === '/';
        re += wholeFolders ? '(?:[^/]*/)*' : '.*';
        i += wholeFolders ? 2 : 1;
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '{') {
      depth++;
      re += '(?:';
    } else if (ch === '}' && depth > 0) {
      depth--;
      re += ')';
    } else if (ch === ',' && depth > 0) re += '|';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += escape(ch);
  }
  return re;
}

export function globToRegExp(glob: string): RegExp {
  const g = glob.replace(/\\/g, '/').replace(/^\.\//, '');
  return new RegExp(`^${translate(g)}$`);
}

export class GlobSet {
  private readonly res: RegExp[];

  constructor(globs: readonly string[]) {
    this.res = globs.map(globToRegExp);
  }

  matches(relPath: string): boolean {
    return this.res.some((r) => r.test(relPath));
  }

  /** Whether everything under a folder is matched (so a scan need not enter it): tests `dir/` and a file inside. */
  coversFolder(relDir: string): boolean {
    return this.matches(`${relDir}/`) || this.matches(`${relDir}/\0`);
  }
}
