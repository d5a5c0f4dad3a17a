// A synchronous call into an asynchronous host on a worker thread: the solvers are plain
// synchronous functions, and a Python process or an onnxruntime session answers through
// events. The caller posts a request and sleeps on a shared counter (Atomics.wait) until the
// bridge thread has posted the reply, which it then takes with receiveMessageOnPort.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { ComputeCancelled } from './backend';
import type { BridgeInit, HostInfo, HostReply, HostRequest } from './hostProtocol';

/** How often a waiting call looks at its cancellation predicate. */
const POLL_MS = 50;

function startBridgeThread(init: BridgeInit, port: MessagePort): Worker {
  const workerData = { init, port };
  // Bundled: dist/computeBridge.js beside this bundle; from sources (tests), the .ts file
  // through tsx's require hook (a worker does not inherit the parent's loader).
  if (__filename.endsWith('.ts')) {
    return new Worker(`require('tsx/cjs'); require(${JSON.stringify(join(__dirname, 'bridgeWorker.ts'))});`, { eval: true, workerData, transferList: [port] });
  }
  const file = join(__dirname, 'computeBridge.js');
  if (!existsSync(file)) throw new Error(`${file} is missing (the build puts it beside ${__filename})`);
  return new Worker(file, { workerData, transferList: [port] });
}

export class SyncBridge {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(4));
  private readonly port: MessagePort;
  private readonly worker: Worker;
  private nextId = 1;
  private dead: string | undefined;
  /** Replies already taken off the port while waiting for another. */
  private readonly early = new Map<number, HostReply>();
  cancelled: (() => boolean) | undefined;

  constructor(
    private readonly label: string,
    init: Omit<BridgeInit, 'ctrl'>,
  ) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = startBridgeThread({ ...init, ctrl: this.ctrl.buffer as SharedArrayBuffer }, port2);
    // Neither keeps the process alive: a CLI run ends when its work does.
    this.worker.unref();
    this.port.unref();
    this.worker.on('error', (e) => {
      this.dead = `the bridge thread failed: ${e.message}`;
    });
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  start(timeoutMs: number): HostInfo {
    const r = this.call({ op: 'start' }, timeoutMs);
    return r.info!;
  }

  /** Sends a request and waits for its reply; throws the host's error, or ComputeCancelled. */
  call(req: HostRequest, timeoutMs = 600_000): Extract<HostReply, { ok: true }> {
    if (this.dead) throw new Error(`${this.label}: ${this.dead}`);
    const id = this.nextId++;
    const transfer = 'payload' in req ? [req.payload.buffer as ArrayBuffer] : [];
    this.port.postMessage({ id, req }, transfer);
    const reply = this.await(id, timeoutMs, req.op !== 'kill');
    if (!reply.ok) throw new Error(reply.error.startsWith(this.label) ? reply.error : `${this.label}: ${reply.error}`);
    return reply;
  }

  private await(id: number, timeoutMs: number, cancellable: boolean): HostReply {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const known = this.early.get(id);
      if (known) {
        this.early.delete(id);
        return known;
      }
      // Read before looking at the port: a reply posted after this read changes the counter,
      // so the wait below returns at once instead of missing it.
      const observed = Atomics.load(this.ctrl, 0);
      const m = receiveMessageOnPort(this.port);
      if (m) {
        const r = m.message as HostReply;
        if (r.id === id) return r;
        this.early.set(r.id, r);
        continue;
      }
      if (cancellable && this.cancelled?.()) {
        this.kill();
        throw new ComputeCancelled(this.label);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.kill();
        throw new Error(`${this.label}: no answer within ${Math.round(timeoutMs / 1000)} s; the worker was stopped`);
      }
      if (this.dead) throw new Error(`${this.label}: ${this.dead}`);
      Atomics.wait(this.ctrl, 0, observed, Math.min(left, POLL_MS));
    }
  }

  /** Ends the worker process (if any) and waits until it is gone; the bridge stays usable for nothing else. */
  kill(): void {
    if (this.dead) return;
    try {
      this.call({ op: 'kill' }, 10_000);
    } finally {
      this.dead = 'its worker process was stopped';
    }
  }

  /** Stops the process and the thread. */
  close(): void {
    try {
      this.kill();
    } catch {
      // Nothing left to stop cleanly: the thread goes anyway.
    }
    void this.worker.terminate();
  }
}
