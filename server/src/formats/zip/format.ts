// The zip format's fixed numbers, shared by the reader, the writer and the CRC patcher.
export const SIG_LOCAL = 0x04034b50;
export const SIG_CENTRAL = 0x02014b50;
export const SIG_EOCD = 0x06054b50;
export const SIG_EOCD64 = 0x06064b50;
export const SIG_LOCATOR64 = 0x07064b50;
export const SIG_DESCRIPTOR = 0x08074b50;

export const FLAG_ENCRYPTED = 0x1;
export const FLAG_DESCRIPTOR = 0x8;
export const FLAG_UTF8 = 0x800;

export const STORED = 0;
export const DEFLATED = 8;

/** A 16- or 32-bit field holding this value means "see the zip64 record". */
export const MAX16 = 0xffff;
export const MAX32 = 0xffffffff;

export const LOCAL_HEADER_SIZE = 30;
export const CENTRAL_HEADER_SIZE = 46;
export const EOCD_SIZE = 22;
export const EOCD64_SIZE = 56;
export const LOCATOR64_SIZE = 20;
