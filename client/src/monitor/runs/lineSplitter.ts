// Splits bytes appended to a file into complete lines with their byte ranges and line numbers.
// A last line without its newline is held back until the newline arrives: a logger may be
// caught half-way through writing a record.

export interface Line {
  /** 1-based line number in the file. */
  number: number;
  /** Byte range of the line's text in the file (newline and a trailing CR excluded). */
  start: number;
  end: number;
  text: string;
}

export class LineSplitter {
  private partial: Buffer[] = [];
  private partialStart = 0;
  private partialBytes = 0;
  private lineNumber = 0;

  /** Bytes of the file from `offset` on; `offset` must follow the previous chunk. */
  push(chunk: Buffer, offset: number): Line[] {
    const lines: Line[] = [];
    if (this.partialBytes === 0) this.partialStart = offset;
    else if (this.partialStart + this.partialBytes !== offset) throw new Error(`chunk at byte ${offset} does not follow byte ${this.partialStart + this.partialBytes}`);
    let from = 0;
    for (let nl = chunk.indexOf(10, from); nl >= 0; nl = chunk.indexOf(10, from)) {
      const piece = chunk.subarray(from, nl);
      const bytes = this.partialBytes ? Buffer.concat([...this.partial, piece]) : piece;
      const start = this.partialBytes ? this.partialStart : offset + from;
      const len = bytes.length > 0 && bytes[bytes.length - 1] === 13 ? bytes.length - 1 : bytes.length;
      lines.push({ number: ++this.lineNumber, start, end: start + len, text: bytes.toString('utf8', 0, len) });
      this.partial = [];
      this.partialBytes = 0;
      from = nl + 1;
    }
    if (from < chunk.length) {
      if (this.partialBytes === 0) this.partialStart = offset + from;
      // Copy: the caller may reuse its read buffer.
      this.partial.push(Buffer.from(chunk.subarray(from)));
      this.partialBytes += chunk.length - from;
    }
    return lines;
  }

  reset(): void {
    this.partial = [];
    this.partialBytes = 0;
    this.partialStart = 0;
    this.lineNumber = 0;
  }
}
