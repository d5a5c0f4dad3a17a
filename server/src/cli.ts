// synbal: check and balance model files from the command line.
import { join } from 'node:path';
import { parseArgs } from './cli/args';
import { FileError } from './errors/fileError';
import { balanceCommand, check, demo, example, inspect, manifest, type Io } from './cli/commands';

const USAGE = `synbal — find and fix out-of-balance hidden units in neural network files

usage:
  synbal inspect FILE [--activation A] [--format text|json]
  synbal check FILE [--p P | --regularizer R] [--tolerance T] [--activation A] [--predict] [--format text|json|sarif]
                 [--device auto|cpu|cuda|mps] [--python PATH] [--backend cpu|torch|onnxruntime|tfjs]
  synbal balance FILE [-o OUT | --in-place] [--p P | --regularizer R] [--tolerance T]
                 [--scope network|layer:NAME|layer-tied:NAME|unit:NAME#INDEX]
                 [--method optimal|newton|red-black|stochastic|cyclic|layers|odd-even|tied-layers]
                 [--seed N] [--max-iterations N] [--activation A] [--format text|json]
                 [--verify [--force] [--input-shape NAME=1x3x320x320]...]
                 [--device auto|cpu|cuda|mps] [--python PATH] [--backend cpu|torch|onnxruntime|tfjs]
  synbal manifest CHECKPOINT [-o FILE] [--force]   (writes <checkpoint>.synbal.json to edit)
  synbal example mlp|autoencoder|conv|rnn|residual [-o FILE]
  synbal demo [--out DIR]

formats: ONNX, PyTorch (.pt/.pth/.bin/.ckpt: zip, legacy, TorchScript), safetensors (and
sharded *.safetensors.index.json), Keras (.h5, .keras), TensorFlow.js (model.json + shards),
NumPy (.npy, .npz), and the JSON network description. A state dict without a graph
takes its layers from <checkpoint>.synbal.json, else from its tensor names; activations it
does not state are never assumed (--activation relu states one for every hidden layer).
regularizers: --p 2 is Σ|w|², --p 1 is Σ|w|; --regularizer "0.5*L2+0.1*L1" mixes powers.
balance --verify runs both files on seeded random inputs (onnxruntime for ONNX, else the engine's
forward pass) and refuses, unless --force, a copy whose outputs move beyond rounding, or a check
that cannot run or is inconclusive (outputs the same for every input). Open input dimensions get
the model's metadata sizes, else the sizes its graph needs, else batch 1, 224 per image axis, 64
per sequence; --input-shape sets them (repeatable; NAME= may be left out for a single input).
check --predict adds each fix's λ* and the fall in R it brings (per unit, per layer tied).
check exits 0 when every balanceable unit is within the tolerance (default 1e-7 relative
deficit |IN−OUT|/(IN+OUT)), 1 when some are not, 2 on error.
balance writes <name>.balanced.<ext> beside the input unless -o or --in-place (which keeps
<file>.bak) is given; files are written to a temporary file, checked, then renamed.
--device: where the costs, products and scaling run. For balance, auto (default) tries a GPU
(torch with CUDA or MPS, onnxruntime's CUDA provider, tfjs-node-gpu) for models of 16.8 M
weights or more when a GPU device exists, and otherwise, or when none starts, uses the CPU;
check stays on the CPU unless a GPU is named. torch runs in --python (default python3).
`;

/** Errors as one line: a file's problem after its path, anything else as its message. */
function describeError(e: unknown): string {
  // A copy the check refused: the command line's way past it (the editor's quick fixes have none).
  if (e instanceof FileError && e.kind === 'refused' && /outputs differ|inconclusive|cannot verify the balanced/.test(e.problem)) return `${e.path}: ${e.problem} (use --force to write it anyway${/inconclusive/.test(e.problem) ? ', or --input-shape to check at other sizes' : ''})`;
  if (e instanceof FileError) return `${e.path}: ${e.problem}`;
  return e instanceof Error ? e.message : String(e);
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  try {
    const args = parseArgs(argv);
    if (args.flags.has('version')) {
      io.out(`synbal ${process.env.SYNBAL_VERSION ?? 'dev'}\n`);
      return 0;
    }
    if (!args.command || args.command === 'help' || args.flags.has('help')) {
      io.out(USAGE);
      return args.command || args.flags.has('help') ? 0 : 2;
    }
    switch (args.command) {
      case 'inspect':
        return inspect(args, io);
      case 'check':
        return check(args, io);
      case 'balance':
        return await balanceCommand(args, io);
      case 'example':
        return example(args, io);
      case 'manifest':
        return manifest(args, io);
      case 'demo':
        return await demo(args, io, join(__dirname, '..', 'server', 'examples', 'cnn_bn.onnx'));
      default:
        throw new Error(`unknown command "${args.command}" (try synbal --help)`);
    }
  } catch (e) {
    io.err(`synbal: ${describeError(e)}\n`);
    return 2;
  }
}
