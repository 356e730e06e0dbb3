// Classic pcap (not pcapng): a streaming writer and a push parser, free of node:fs so
// the fabric bundles for browsers (host/fabric/pcap-file.ts has the Node file sink and
// reader). Format: IETF draft-ietf-opsawg-pcap, "PCAP Capture File Format":
//
//   file header (24 B): magic u32, version 2.4 (u16, u16), thiszone i32, sigfigs u32,
//                       snaplen u32, link type u32 (bits 0..27; FCS flags above)
//   record header (16 B): ts_sec u32, ts_frac u32 (µs or ns by magic), incl_len u32, orig_len u32
//
// Fields are in the writer's byte order, told by how the magic reads. We write
// little-endian with the nanosecond magic, timestamps from the virtual clock.

/** draft-ietf-opsawg-pcap §4: magic of microsecond and nanosecond files. */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** pcapng's Section Header Block type (draft-ietf-opsawg-pcapng §4.1): the first 4 bytes of a pcapng file. */
export const PCAPNG_MAGIC = 0x0a0d0d0a;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const PCAP_FILE_HEADER = 24;
export const PCAP_RECORD_HEADER = 16;
/** LINKTYPE_ETHERNET (tcpdump.org link-layer header types): IEEE 802.3 frames, no FCS. */
export const LINKTYPE_ETHERNET = 1;
/** draft §4: the link type is the low 28 bits of the field. */
export const LINKTYPE_MASK = 0x0fffffff;
export const DEFAULT_SNAPLEN = 65535;
/** A record longer than this is taken as a corrupt file (pcap's own upper bound, 256 KiB). */
export const PCAP_MAX_RECORD = 262144;

/** A few link types by name, for error messages. */
export const LINKTYPE_NAMES: Readonly<Record<number, string>> = {
  0: "NULL", 1: "ETHERNET", 101: "RAW", 105: "IEEE802_11", 113: "LINUX_SLL", 127: "IEEE802_11_RADIOTAP",
  228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2",
};

const NS_PER_S = 1e9;

export class PcapError extends Error {
  override name = "PcapError";
}

/** Where the writer's bytes go. write() must consume (or copy) the bytes before it returns. */
export interface ByteSink {
  write(bytes: Uint8Array): void;
  close?(): void;
}

/** An in-memory sink (tests, browsers): the bytes written so far. */
export class MemorySink implements ByteSink {
  private chunks: Uint8Array[] = [];
  length = 0;
  write(bytes: Uint8Array): void {
    this.chunks.push(bytes.slice());
    this.length += bytes.length;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) { out.set(c, at); at += c.length; }
    return out;
  }
}

export interface PcapWriterOptions {
  snaplen?: number;
  linkType?: number;
  /** Bytes buffered before a write to the sink (default 1 MiB). */
  bufferBytes?: number;
}

/**
 * Streaming pcap writer (nanosecond timestamps, little-endian): records go into a
 * buffer that is handed to the sink when full, so a long run never sits in memory.
 */
export class PcapWriter {
  /** Records written. */
  records = 0;
  readonly snaplen: number;
  private buf: Uint8Array;
  private dv: DataView;
  private at = 0;
  private closed = false;

  constructor(private readonly sink: ByteSink, opts: PcapWriterOptions = {}) {
    this.snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
    const size = Math.max(opts.bufferBytes ?? 1 << 20, PCAP_FILE_HEADER + PCAP_RECORD_HEADER);
    this.buf = new Uint8Array(size);
    this.dv = new DataView(this.buf.buffer);
    const dv = this.dv;
    dv.setUint32(0, PCAP_MAGIC_NS, true);
    dv.setUint16(4, PCAP_VERSION_MAJOR, true);
    dv.setUint16(6, PCAP_VERSION_MINOR, true);
    dv.setInt32(8, 0, true); // thiszone: UTC
    dv.setUint32(12, 0, true); // sigfigs
    dv.setUint32(16, this.snaplen, true);
    dv.setUint32(20, opts.linkType ?? LINKTYPE_ETHERNET, true);
    this.at = PCAP_FILE_HEADER;
  }

  /** One frame seen at virtual time `ns`: bytes[off, off+len), cut to the snap length. */
  record(ns: number, bytes: Uint8Array, off = 0, len = bytes.length - off): void {
    if (this.closed) throw new PcapError("pcap: record() after close()");
    const t = Math.max(0, Math.round(ns));
    const sec = Math.floor(t / NS_PER_S);
    const incl = Math.min(len, this.snaplen);
    if (this.at + PCAP_RECORD_HEADER > this.buf.length) this.flush();
    const dv = this.dv;
    dv.setUint32(this.at, sec, true);
    dv.setUint32(this.at + 4, t - sec * NS_PER_S, true);
    dv.setUint32(this.at + 8, incl, true);
    dv.setUint32(this.at + 12, len, true);
    this.at += PCAP_RECORD_HEADER;
    if (this.at + incl > this.buf.length) {
      this.flush();
      if (incl > this.buf.length) { this.sink.write(bytes.subarray(off, off + incl)); this.records++; return; }
    }
    this.buf.set(bytes.subarray(off, off + incl), this.at);
    this.at += incl;
    this.records++;
  }

  /** Hand the buffered bytes to the sink. */
  flush(): void {
    if (this.at === 0) return;
    this.sink.write(this.buf.subarray(0, this.at));
    this.at = 0;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.sink.close?.();
  }
}

export interface PcapHeader {
  /** Timestamp resolution of the records. */
  resolution: "us" | "ns";
  littleEndian: boolean;
  versionMajor: number;
  versionMinor: number;
  snaplen: number;
  /** Link type (low 28 bits of the header field). */
  linkType: number;
}

export interface PcapRecord {
  /** 1-based frame number, as Wireshark counts. */
  number: number;
  /** Timestamp in ns (µs files are scaled). */
  ns: number;
  /** The captured bytes (incl_len of them); a copy the caller may keep. */
  frame: Uint8Array;
  /** Length of the frame on the wire; larger than frame.length when the capture cut it. */
  origLen: number;
}

/** Name of a link type for messages, e.g. "113 (LINUX_SLL)". */
export function linkTypeName(t: number): string {
  const n = LINKTYPE_NAMES[t];
  return n ? `${t} (${n})` : String(t);
}

/** Byte order and resolution told by the first 4 bytes; throws PcapError for pcapng or anything else. */
function pcapMagic(b: Uint8Array): { littleEndian: boolean; resolution: "us" | "ns" } {
  const dv = new DataView(b.buffer, b.byteOffset, 4);
  const be = dv.getUint32(0, false);
  if (be === PCAPNG_MAGIC) {
    throw new PcapError("this is a pcapng file; only classic pcap is read (convert it: editcap -F pcap IN.pcapng OUT.pcap)");
  }
  const le = dv.getUint32(0, true);
  if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS) return { littleEndian: true, resolution: le === PCAP_MAGIC_NS ? "ns" : "us" };
  if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS) return { littleEndian: false, resolution: be === PCAP_MAGIC_NS ? "ns" : "us" };
  throw new PcapError(`not a pcap file (magic 0x${be.toString(16).padStart(8, "0")})`);
}

/** Reads the 24-byte file header; throws PcapError with a plain reason for anything else. */
export function parsePcapHeader(b: Uint8Array): PcapHeader {
  if (b.length < 4) throw new PcapError("not a pcap file: shorter than a pcap file header");
  const { littleEndian, resolution } = pcapMagic(b);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < PCAP_FILE_HEADER) throw new PcapError("not a pcap file: the file header is cut short");
  const versionMajor = dv.getUint16(4, littleEndian);
  const versionMinor = dv.getUint16(6, littleEndian);
  if (versionMajor !== PCAP_VERSION_MAJOR) throw new PcapError(`pcap version ${versionMajor}.${versionMinor} is not supported (want 2.x)`);
  return {
    resolution, littleEndian, versionMajor, versionMinor,
    snaplen: dv.getUint32(16, littleEndian),
    linkType: dv.getUint32(20, littleEndian) & LINKTYPE_MASK,
  };
}

/**
 * Push parser: feed the file in chunks of any size, get whole records back. end()
 * throws when the file stopped inside a header or a record.
 */
export class PcapParser {
  header: PcapHeader | undefined;
  // Bytes not parsed yet: buf[0, held). Grows by doubling, so feeding a byte at a time stays linear.
  private buf = new Uint8Array(0);
  private held = 0;
  private n = 0;

  push(chunk: Uint8Array): PcapRecord[] {
    let b: Uint8Array;
    if (this.held) {
      if (this.held + chunk.length > this.buf.length) {
        const nb = new Uint8Array(Math.max(this.buf.length * 2, this.held + chunk.length));
        nb.set(this.buf.subarray(0, this.held));
        this.buf = nb;
      }
      this.buf.set(chunk, this.held);
      this.held += chunk.length;
      b = this.buf.subarray(0, this.held);
    } else b = chunk;
    let at = 0;
    const out: PcapRecord[] = [];
    if (!this.header) {
      if (b.length >= 4) pcapMagic(b); // pcapng or junk is told at once
      if (b.length >= PCAP_FILE_HEADER) {
        this.header = parsePcapHeader(b.subarray(0, PCAP_FILE_HEADER));
        at = PCAP_FILE_HEADER;
      }
    }
    const h = this.header;
    if (h) {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const scale = h.resolution === "ns" ? 1 : 1000;
      while (b.length - at >= PCAP_RECORD_HEADER) {
        const incl = dv.getUint32(at + 8, h.littleEndian);
        if (incl > PCAP_MAX_RECORD) throw new PcapError(`frame ${this.n + 1}: record length ${incl} is not plausible (corrupt capture)`);
        if (b.length - at - PCAP_RECORD_HEADER < incl) break;
        const sec = dv.getUint32(at, h.littleEndian);
        const frac = dv.getUint32(at + 4, h.littleEndian);
        const orig = dv.getUint32(at + 12, h.littleEndian);
        const start = at + PCAP_RECORD_HEADER;
        out.push({ number: ++this.n, ns: sec * NS_PER_S + frac * scale, frame: b.slice(start, start + incl), origLen: Math.max(orig, incl) });
        at = start + incl;
      }
    }
    // Keep the unparsed tail at the front of buf.
    const rest = b.length - at;
    if (rest === 0) this.held = 0;
    else if (b === chunk) {
      if (this.buf.length < rest) this.buf = new Uint8Array(Math.max(rest, 4096));
      this.buf.set(chunk.subarray(at));
      this.held = rest;
    } else {
      this.buf.copyWithin(0, at, this.held);
      this.held = rest;
    }
    return out;
  }

  /** Records parsed so far. */
  get count(): number { return this.n; }

  /** The input is over: throws if it ended inside the header or a record. */
  end(): void {
    if (!this.header) {
      if (this.held >= 4) pcapMagic(this.buf);
      throw new PcapError(this.held === 0 ? "empty file: not a pcap capture" : "not a pcap file: shorter than a pcap file header");
    }
    if (this.held) throw new PcapError(`capture is truncated: it ends inside frame ${this.n + 1}`);
  }
}

/** All records of a capture held in memory. */
export function readPcap(bytes: Uint8Array): { header: PcapHeader; records: PcapRecord[] } {
  const p = new PcapParser();
  const records = p.push(bytes);
  p.end();
  return { header: p.header!, records };
}
