// Names of written files, shared by the server (which writes them) and the client (which
// tells the user before it asks). Pure string work on a file's base name: no node:path.

/**
 * `<stem>.balanced.<ext>` for a file's base name (what node's path.basename gives): its own
 * extension (as node's path.extname sees it: the last dot, not a leading one), else `extension`.
 */
export function balancedFileName(fileName: string, extension: string): string {
  const dot = fileName.lastIndexOf('.');
  const hasExt = dot > 0 && fileName !== '..';
  const stem = hasExt ? fileName.slice(0, dot) : fileName;
  return `${stem}.balanced.${hasExt ? fileName.slice(dot + 1) : extension}`;
}
