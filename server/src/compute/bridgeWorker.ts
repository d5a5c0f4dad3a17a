// The bridge thread: owns a device backend's asynchronous side (the torch worker process or an
// onnxruntime session) and answers the solver's thread, which waits on a shared counter and
// then takes the reply with receiveMessageOnPort. Requests are served one at a time, except
// `kill`, which ends the process at once (the cancellation path).
import { workerData, type MessagePort } from 'node:worker_threads';
import type { BridgeInit, Host, HostReply, HostRequest } from './hostProtocol';
import { OrtHost } from './ortHost';
import { TorchHost } from './torchHost';

const { init, port } = workerData as { init: BridgeInit; port: MessagePort };
const ctrl = new Int32Array(init.ctrl);

function makeHost(): Host {
  if (init.kind === 'torch') return new TorchHost(init.python ?? 'python3', init.device, init.script ?? '');
  return new OrtHost(init.device);
}

const host = makeHost();

function reply(msg: HostReply): void {
  const transfer = msg.ok && msg.payload ? [msg.payload.buffer as ArrayBuffer] : [];
  port.postMessage(msg, transfer);
  // The waiting thread counts replies: one more is in its port now.
  Atomics.add(ctrl, 0, 1);
  Atomics.notify(ctrl, 0);
}

let queue: Promise<void> = Promise.resolve();

port.on('message', ({ id, req }: { id: number; req: HostRequest }) => {
  if (req.op === 'kill') {
    void host.kill().then(
      () => reply({ id, ok: true }),
      (e: Error) => reply({ id, ok: false, error: e.message }),
    );
    return;
  }
  queue = queue.then(async () => {
    try {
      if (req.op === 'start') reply({ id, ok: true, info: await host.start() });
      else reply({ id, ok: true, payload: await host.handle(req) });
    } catch (e) {
      reply({ id, ok: false, error: (e as Error).message });
    }
  });
});
