// The bridge thread's side of the torch backend: starts the Python worker
// (server/compute/torch_worker.py) with the user's interpreter, and speaks its framed protocol
// (a JSON line, then raw little-endian bytes) over the process's stdin and stdout.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Host, HostInfo, HostRequest } from './hostProtocol';

interface Frame {
  header: Record<string, unknown>;
  payload: Buffer;
}

/** Splits a byte stream into frames: a '\n'-terminated JSON header with `bytes`, then the payload. */
class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private header: Record<string, unknown> | undefined;
  private waiting: ((f: Frame) => void)[] = [];
  private ready: Frame[] = [];

  push(data: Buffer): void {
    this.chunks.push(data);
    this.length += data.length;
    for (;;) {
      // A payload arriving in many pipe chunks is joined once, when it is complete.
      if (this.header && this.length < Number(this.header.bytes ?? 0)) return;
      const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      this.chunks = [buf];
      if (!this.header) {
        const nl = buf.indexOf(10);
        if (nl < 0) return;
        this.header = JSON.parse(buf.subarray(0, nl).toString('utf8')) as Record<string, unknown>;
        this.chunks = [buf.subarray(nl + 1)];
        this.length = buf.length - nl - 1;
        continue;
      }
      const need = Number(this.header.bytes ?? 0);
      if (this.length < need) return;
      const frame = { header: this.header, payload: Buffer.from(buf.subarray(0, need)) };
      this.header = undefined;
      this.chunks = [buf.subarray(need)];
      this.length = buf.length - need;
      const w = this.waiting.shift();
      if (w) w(frame);
      else this.ready.push(frame);
    }
  }

  next(): Promise<Frame> {
    const f = this.ready.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

const STDERR_KEEP = 4000;

export class TorchHost implements Host {
  private child: ChildProcessWithoutNullStreams | undefined;
  private readonly frames = new FrameReader();
  private stderr = '';
  private exited: Promise<string> | undefined;
  private label: string;

  constructor(
    private readonly python: string,
    private readonly device: string,
    private readonly script: string,
  ) {
    this.label = `torch worker (${python}, device ${device})`;
  }

  start(): Promise<HostInfo> {
    const child = spawn(this.python, ['-u', this.script, '--device', this.device], { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    this.child = child;
    child.stdout.on('data', (d: Buffer) => this.frames.push(d));
    child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString('utf8')).slice(-STDERR_KEEP);
    });
    // A write into a pipe whose reader died surfaces through 'exit' below, not as a crash.
    child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      child.on('error', (e: NodeJS.ErrnoException) => {
        resolve(e.code === 'ENOENT' ? `Python interpreter "${this.python}" not found (set synapticBalance.python, or --python, to a Python with torch)` : `cannot start "${this.python}": ${e.message}`);
      });
      child.on('exit', (code, signal) => {
        const tail = this.stderr.trim().split('\n').slice(-3).join(' | ');
        resolve(`the Python process ended (${signal ? `signal ${signal}` : `exit code ${code}`})${tail ? `: ${tail}` : ''}`);
      });
    });
    return this.receive().then((hello) => {
      const h = hello.header;
      if (h.ok !== true) {
        const why = String(h.error ?? 'no reason given');
        throw new Error(/No module named|ModuleNotFoundError|ImportError/.test(why) ? `torch is not installed for ${String(h.python ?? this.python)} (${why})` : why);
      }
      const name = h.name ? ` (${String(h.name)})` : '';
      return {
        device: String(h.device),
        description: `torch ${String(h.torch)} on ${String(h.device)}${name}, Python ${this.python}${h.float64 ? '' : ', float32 with compensated sums'}`,
        pid: Number(h.pid),
        scales: true,
      };
    });
  }

  /** The next frame, or the reason the process is gone. */
  private async receive(): Promise<Frame> {
    if (!this.exited) throw new Error(`${this.label}: not started`);
    const gone = this.exited.then((why) => {
      throw new Error(`${this.label}: ${why}`);
    });
    return Promise.race([this.frames.next(), gone]);
  }

  async handle(req: Exclude<HostRequest, { op: 'start' } | { op: 'kill' }>): Promise<Float64Array | undefined> {
    const child = this.child;
    if (!child) throw new Error(`${this.label}: not started`);
    let header: Record<string, unknown>;
    let payload: Float64Array | undefined;
    switch (req.op) {
      case 'products':
        header = { op: 'products', jobs: req.jobs };
        payload = req.payload;
        break;
      case 'scale':
        header = { op: 'scale', id: req.id, file: req.file };
        payload = req.payload;
        break;
      default:
        header = req;
    }
    const bytes = payload ? Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) : Buffer.alloc(0);
    child.stdin.write(`${JSON.stringify({ ...header, bytes: bytes.length })}\n`);
    if (bytes.length) child.stdin.write(bytes);
    const reply = await this.receive();
    if (reply.header.ok !== true) throw new Error(`${this.label}: ${String(reply.header.error ?? 'failed')}`);
    if (reply.payload.length === 0) return undefined;
    // A copy aligned for Float64Array (the frame's bytes may start anywhere in a buffer).
    const out = new Float64Array(reply.payload.length / 8);
    Buffer.from(out.buffer).set(reply.payload);
    return out;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.exited) return;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // 'exit' fires once the process has been waited for: no zombie is left behind.
    await this.exited;
  }
}
