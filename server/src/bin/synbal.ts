// The synbal executable: loads the asynchronous parts (HDF5 in WebAssembly), then runs the
// command line on this process's arguments.
import { main } from '../cli';
import { prepareKeras } from '../formats/keras';

prepareKeras().then(
  async () => {
    process.exitCode = await main(process.argv.slice(2), {
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
    });
  },
  (e: Error) => {
    process.stderr.write(`synbal: cannot load HDF5 support (${e.message})\n`);
    process.exitCode = 2;
  },
);
