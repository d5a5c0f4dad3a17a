// Serving listings (synbal/listing and the standard workspace/textDocumentContent), and the
// list of known checkpoints. A listing asked for before its checkpoint was analysed moves it
// to the front of the queue; one outside the workspace is analysed on demand.
import { statSync } from 'node:fs';
import type { CheckpointInfo, ListingResult } from '../contract/requests';
import { listingText } from './listing';
import { deviceLabel } from './settings';
import type { Session } from './session';
import { fileUriOf, listingUriOfPath, pathOfUri } from './uris';

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export async function listing(session: Session, uri: string): Promise<ListingResult> {
  const path = pathOfUri(uri);
  if (path === undefined) return { uri, fileUri: '', version: 0, state: 'removed', text: `not a checkpoint or listing URI: ${uri}\n` };
  let e = session.store.get(path);
  if ((!e && isFile(path)) || (e && !e.analysis && e.state === 'queued')) {
    session.scheduler.enqueue(path, true);
    e = session.store.get(path);
  }
  if (!e) return { uri: listingUriOfPath(path), fileUri: fileUriOf(path), version: 0, state: 'removed', text: `Synaptic Balance listing of ${path}\nstate        no such file\n` };
  const { version, state } = e;
  return { uri: e.listingUri, fileUri: e.fileUri, version, state, text: await listingText(e, session.settings.tolerance, deviceLabel(session.settings, e.analysis?.parameters ?? 0, session.lastDevice)) };
}

export function checkpoints(session: Session): CheckpointInfo[] {
  return session.store.all().map((e) => session.store.info(e, session.settings.tolerance));
}
