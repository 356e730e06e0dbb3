// pcap files in Node: a file sink for PcapWriter and a chunked reader, so neither a
// long run nor a large capture is held in memory. (host/fabric/pcap.ts is the format.)
import * as fs from "node:fs";
import { PcapParser, PcapWriter, PcapError, type ByteSink, type PcapHeader, type PcapRecord, type PcapWriterOptions } from "./pcap.js";

const READ_CHUNK = 1 << 20;

/** Writes to a file with synchronous writes (the virtual clock does not wait for IO). */
export class FileSink implements ByteSink {
  private fd: number | undefined;
  constructor(readonly path: string) {
    this.fd = fs.openSync(path, "w");
  }
  write(bytes: Uint8Array): void {
    if (this.fd === undefined) throw new PcapError(`pcap: ${this.path} is closed`);
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(this.fd, bytes, off, bytes.length - off);
  }
  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A nanosecond pcap file at `path`, written as frames come. Call close() at the end. */
export function createPcapFile(path: string, opts?: PcapWriterOptions): PcapWriter {
  return new PcapWriter(new FileSink(path), opts);
}

/**
 * Reads a capture in chunks. header() is known after the first batch; batches() yields
 * arrays of records. Throws PcapError for pcapng, other formats and truncated files.
 */
export class PcapFileReader {
  private readonly parser = new PcapParser();
  private readonly fd: number;
  private readonly chunk: Uint8Array;

  constructor(readonly path: string, chunkBytes = READ_CHUNK) {
    this.fd = fs.openSync(path, "r");
    this.chunk = new Uint8Array(chunkBytes);
  }

  /** The file header (reads the first chunk if needed). */
  header(): PcapHeader {
    const first: PcapRecord[] = [];
    while (!this.parser.header) {
      const r = this.read();
      if (r === null) this.parser.end(); // throws the reason
      else first.push(...r);
    }
    if (first.length) this.first = first;
    return this.parser.header!;
  }

  private first: PcapRecord[] | undefined;

  private read(): PcapRecord[] | null {
    const n = fs.readSync(this.fd, this.chunk, 0, this.chunk.length, null);
    if (n === 0) return null;
    return this.parser.push(this.chunk.subarray(0, n));
  }

  /** Batches of records in file order; the last one may be short. */
  *batches(): Generator<PcapRecord[]> {
    if (this.first) { const f = this.first; this.first = undefined; if (f.length) yield f; }
    for (;;) {
      const r = this.read();
      if (r === null) break;
      if (r.length) yield r;
    }
    this.parser.end();
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Every record of the file at `path` (small captures, tests). */
export function readPcapFile(path: string): { header: PcapHeader; records: PcapRecord[] } {
  const r = new PcapFileReader(path);
  try {
    const header = r.header();
    const records: PcapRecord[] = [];
    for (const b of r.batches()) records.push(...b);
    return { header, records };
  } finally {
    r.close();
  }
}
