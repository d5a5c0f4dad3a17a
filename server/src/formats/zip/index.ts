// One zip implementation for every format that lives in zip archives: PyTorch checkpoints
// (read by descriptor, patched in place), and .keras and .npz files (read by path, rewritten
// through the streaming writer).
export { checkCrcs, rewriteCrcs } from './crc';
export { readZipDirectory, type ZipDirectory, type ZipEntry } from './directory';
export { MAX_INFLATE_RATIO, checkInflatedSize, readEntry } from './entries';
export { readZipEntry, readZipFileDirectory, verifyZip } from './file';
export { DEFLATED, SIG_LOCAL, STORED } from './format';
export { readAt } from './readAt';
export { firstZipEntryName } from './sniff';
export { writeZip, writeZipFile, type ZipFileOptions, type ZipItem } from './write';
