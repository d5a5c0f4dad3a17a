// Entry point of the worker bundle (dist/lspWorker.js): parsing, analysing and balancing run
// here, off the thread that answers requests. HDF5 (Keras files) loads asynchronously first;
// jobs posted meanwhile wait in the port's queue.
import { prepareKeras } from '../formats/keras';
import { openNetwork } from '../app/openNetwork';
import { runWorker } from './workerMain';

void prepareKeras()
  .catch((e: Error) => process.emitWarning(`HDF5 support did not load (${e.message}): Keras files will be reported unreadable`))
  .finally(() => runWorker(openNetwork));
