// Messages between a device backend (the solver's thread, which waits synchronously) and its
// host (a worker thread that owns the asynchronous part: a Python process or an onnxruntime
// session). Vectors travel as Float64Array, bulk tensors as files named here.

export type BlockDtype = 'float32' | 'float64';

/** One cost block in an upload file: `rows × cols` values at `offset` (bytes), row-major. */
export interface UploadBlock {
  id: number;
  /** `matrix`: the values are costs; `weights`: they are weights, cost |w|^p on the device. */
  kind: 'matrix' | 'weights';
  p: number;
  rows: number;
  cols: number;
  dtype: BlockDtype;
  offset: number;
  /** Stored [source][target]: the cost matrix is the transpose of what the file holds. */
  transposed: boolean;
  /** Keep the weights on the device too, for scaling them there. */
  keep: boolean;
}

export type HostRequest =
  | { op: 'start' }
  | { op: 'upload'; file: string; blocks: UploadBlock[] }
  /** The payload holds, per job in order, x (when hasX) then y (when hasY). */
  | { op: 'products'; jobs: { id: number; x: boolean; y: boolean }[]; payload: Float64Array }
  /** payload = ft then fs; the scaled weights are written to `file` in the block's dtype. */
  | { op: 'scale'; id: number; file: string; payload: Float64Array }
  | { op: 'reset' }
  | { op: 'wait'; seconds: number }
  | { op: 'kill' };

export interface HostInfo {
  /** The device in the library's words (`cuda:0`, `cpu`). */
  device: string;
  description: string;
  /** Process id of a worker process, when there is one. */
  pid?: number;
  /** Whether the host can scale resident weights itself. */
  scales: boolean;
}

export type HostReply =
  | { id: number; ok: true; info?: HostInfo; payload?: Float64Array }
  | { id: number; ok: false; error: string };

/** What each kind of host does with a request; `kill` is answered by the bridge itself. */
export interface Host {
  start(): Promise<HostInfo>;
  handle(req: Exclude<HostRequest, { op: 'start' } | { op: 'kill' }>): Promise<Float64Array | undefined>;
  /** Ends any process at once and resolves when it is gone (reaped). */
  kill(): Promise<void>;
}

export interface BridgeInit {
  kind: 'torch' | 'onnxruntime';
  ctrl: SharedArrayBuffer;
  /** torch: the interpreter and device; onnxruntime: the execution provider. */
  python?: string;
  device: string;
  script?: string;
}
