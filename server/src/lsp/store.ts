// What the server knows about each checkpoint: its state, its latest analysis (kept while a
// new one runs, so the listing stays useful), or why it could not be read; and a version that
// grows with every change clients can see.
import type { CheckpointInfo, CheckpointState } from '../contract/requests';
import type { CheckpointAnalysis, JobFailure } from '../app/analysis';
import { countAbove, layoutOf, type ListingLayout } from './listing';
import { fileUriOf, listingUriOfPath, pathOfUri } from './uris';

export interface Entry {
  readonly path: string;
  readonly fileUri: string;
  readonly listingUri: string;
  state: CheckpointState;
  analysis?: CheckpointAnalysis;
  layout?: ListingLayout;
  failure?: JobFailure;
  version: number;
  /** Rendered text (or its rendering in progress), valid for the key it was rendered with. */
  rendered?: { key: string; text: Promise<string> };
}

export class CheckpointStore {
  private readonly entries = new Map<string, Entry>();

  get(path: string): Entry | undefined {
    return this.entries.get(path);
  }

  /** By `file:` or listing URI. */
  byUri(uri: string): Entry | undefined {
    const path = pathOfUri(uri);
    return path === undefined ? undefined : this.entries.get(path);
  }

  all(): Entry[] {
    return [...this.entries.values()];
  }

  ensure(path: string): Entry {
    let e = this.entries.get(path);
    if (!e) {
      e = { path, fileUri: fileUriOf(path), listingUri: listingUriOfPath(path), state: 'queued', version: 0 };
      this.entries.set(path, e);
    }
    return e;
  }

  setState(e: Entry, state: CheckpointState): void {
    if (e.state === state) return;
    e.state = state;
    this.changed(e);
  }

  setAnalysis(e: Entry, a: CheckpointAnalysis): void {
    e.analysis = a;
    e.layout = layoutOf(a);
    e.failure = undefined;
    e.state = 'analysed';
    this.changed(e);
  }

  setFailure(e: Entry, f: JobFailure): void {
    e.analysis = undefined;
    e.layout = undefined;
    e.failure = f;
    e.state = 'failed';
    this.changed(e);
  }

  delete(path: string): Entry | undefined {
    const e = this.entries.get(path);
    if (e) {
      this.entries.delete(path);
      e.state = 'removed';
      this.changed(e);
    }
    return e;
  }

  /** Something shown changed (also: settings that change the text). */
  changed(e: Entry): void {
    e.version++;
    e.rendered = undefined;
  }

  info(e: Entry, tolerance: number): CheckpointInfo {
    const a = e.analysis;
    const base: CheckpointInfo = { fileUri: e.fileUri, listingUri: e.listingUri, state: e.state, version: e.version };
    if (e.failure) base.error = e.failure.message;
    if (!a) return base;
    const unbalanced = a.layers.reduce((n, l) => n + countAbove(l, tolerance), 0);
    return { ...base, format: a.format, parameters: a.parameters, balanceable: a.balanceable, unbalanced, maxRelativeDeficit: a.maxRelativeDeficit, R: a.R };
  }
}
