// The synbal executable: runs the command line on this process's arguments.
import { main } from '../cli';

process.exitCode = main(process.argv.slice(2), {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
});
