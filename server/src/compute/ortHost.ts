// The bridge thread's side of the onnxruntime backend: one InferenceSession per upload (its
// graph from ortGraph.ts), run with only the outputs a request wants.
import { rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { Host, HostInfo, HostRequest, UploadBlock } from './hostProtocol';
import { productNames, productsModel } from './ortGraph';
import { loadOrt, ortProvider } from './ortLoad';

interface Resident {
  block: UploadBlock;
  session: InferenceSession;
  zerosX: Tensor;
  zerosY: Tensor;
}

export class OrtHost implements Host {
  private ort: typeof import('onnxruntime-node') | undefined;
  private provider = 'cpu';
  private readonly blocks = new Map<number, Resident>();
  private sessions: InferenceSession[] = [];

  constructor(private readonly device: string) {}

  async start(): Promise<HostInfo> {
    const ort = loadOrt();
    this.ort = ort;
    this.provider = ortProvider(ort, this.device);
    const version = (ort.env as { versions?: { common?: string } }).versions?.common ?? '';
    return { device: this.provider === 'cuda' ? 'cuda' : 'cpu', description: `onnxruntime-node ${version} (${this.provider} execution provider)`.replace('  ', ' '), scales: false };
  }

  async handle(req: Exclude<HostRequest, { op: 'start' } | { op: 'kill' }>): Promise<Float64Array | undefined> {
    switch (req.op) {
      case 'upload':
        await this.upload(req.file, req.blocks);
        return undefined;
      case 'products':
        return this.products(req.jobs, req.payload);
      case 'reset':
        await this.reset();
        return undefined;
      case 'wait':
        await new Promise((r) => setTimeout(r, req.seconds * 1000));
        return undefined;
      case 'scale':
        throw new Error('onnxruntime scales on the CPU (no resident weights)');
    }
  }

  private async upload(file: string, blocks: UploadBlock[]): Promise<void> {
    const ort = this.ort!;
    // External data is found relative to the model's folder: the model goes beside the data.
    const model = join(dirname(file), `${Date.now()}-${blocks[0]?.id ?? 0}.onnx`);
    writeFileSync(model, productsModel(blocks, file));
    let session: InferenceSession;
    try {
      session = await ort.InferenceSession.create(model, { executionProviders: [this.provider], graphOptimizationLevel: 'all' });
    } catch (e) {
      throw new Error(`onnxruntime could not load the products graph (${blocks.length} blocks, ${this.provider}): ${(e as Error).message}`);
    } finally {
      rmSync(model, { force: true });
    }
    this.sessions.push(session);
    for (const b of blocks) {
      const n = productNames(b);
      this.blocks.set(b.id, {
        block: b,
        session,
        zerosX: new ort.Tensor('float64', new Float64Array(n.xShape[0] * n.xShape[1]), n.xShape),
        zerosY: new ort.Tensor('float64', new Float64Array(n.yShape[0] * n.yShape[1]), n.yShape),
      });
    }
  }

  private async products(jobs: { id: number; x: boolean; y: boolean }[], payload: Float64Array): Promise<Float64Array> {
    const ort = this.ort!;
    // One run per session, fetching only the outputs asked for; inputs nobody asked about get zeros.
    const bySession = new Map<InferenceSession, { feeds: Record<string, Tensor>; fetches: string[] }>();
    const wanted: { name: string; session: InferenceSession }[] = [];
    let pos = 0;
    for (const j of jobs) {
      const r = this.blocks.get(j.id);
      if (!r) throw new Error(`no block ${j.id} in onnxruntime (${this.blocks.size} resident)`);
      const n = productNames(r.block);
      let entry = bySession.get(r.session);
      if (!entry) {
        entry = { feeds: {}, fetches: [] };
        for (const other of this.blocks.values()) {
          if (other.session !== r.session) continue;
          const on = productNames(other.block);
          entry.feeds[on.x] = other.zerosX;
          entry.feeds[on.y] = other.zerosY;
        }
        bySession.set(r.session, entry);
      }
      const nS = n.xShape[0] * n.xShape[1];
      const nT = n.yShape[0] * n.yShape[1];
      if (j.x) {
        entry.feeds[n.x] = new ort.Tensor('float64', payload.slice(pos, pos + nS), n.xShape);
        pos += nS;
        entry.fetches.push(n.row);
        wanted.push({ name: n.row, session: r.session });
      }
      if (j.y) {
        entry.feeds[n.y] = new ort.Tensor('float64', payload.slice(pos, pos + nT), n.yShape);
        pos += nT;
        entry.fetches.push(n.col);
        wanted.push({ name: n.col, session: r.session });
      }
    }
    const results = new Map<InferenceSession, Record<string, Tensor>>();
    for (const [session, { feeds, fetches }] of bySession) results.set(session, await session.run(feeds, fetches));
    const parts = wanted.map((w) => results.get(w.session)![w.name].data as Float64Array);
    const out = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  private async reset(): Promise<void> {
    const old = this.sessions;
    this.sessions = [];
    this.blocks.clear();
    for (const s of old) await s.release();
  }

  async kill(): Promise<void> {
    await this.reset();
  }
}
