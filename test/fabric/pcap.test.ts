// pcap writer and reader: what Wireshark and tcpdump read, and what replay accepts.
import { describe, it, expect } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  PcapWriter, MemorySink, PcapParser, PcapError, readPcap, parsePcapHeader,
  PCAP_MAGIC_NS, PCAP_MAGIC_US, LINKTYPE_ETHERNET, type PcapRecord,
} from "../../host/fabric/pcap.js";
import { createPcapFile, readPcapFile, PcapFileReader } from "../../host/fabric/pcap-file.js";
import { Prng } from "../../host/workload/prng.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wasm-dpu-pcap-"));

function frames(n: number, seed = 1): { ns: number; frame: Uint8Array }[] {
  const p = new Prng(seed);
  const out = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    const f = new Uint8Array(14 + p.below(4600));
    for (let j = 0; j < f.length; j++) f[j] = p.next() & 0xff;
    t += 1 + p.below(3_000_000_000); // gaps up to 3 s: seconds and nanoseconds both move
    out.push({ ns: t, frame: f });
  }
  return out;
}

/** A capture built by hand, in either byte order and resolution. */
function handMade(opts: { magic: number; le: boolean; linkType: number; recs: { sec: number; frac: number; bytes: number[] }[] }): Uint8Array {
  const size = 24 + opts.recs.reduce((a, r) => a + 16 + r.bytes.length, 0);
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, opts.magic, opts.le);
  dv.setUint16(4, 2, opts.le); dv.setUint16(6, 4, opts.le);
  dv.setUint32(16, 65535, opts.le);
  dv.setUint32(20, opts.linkType, opts.le);
  let at = 24;
  for (const r of opts.recs) {
    dv.setUint32(at, r.sec, opts.le); dv.setUint32(at + 4, r.frac, opts.le);
    dv.setUint32(at + 8, r.bytes.length, opts.le); dv.setUint32(at + 12, r.bytes.length, opts.le);
    b.set(r.bytes, at + 16);
    at += 16 + r.bytes.length;
  }
  return b;
}

/** Records as comparable strings (vitest's deep equality is slow on byte arrays). */
const key = (rs: PcapRecord[]) => rs.map((r) => `${r.number} ${r.ns} ${r.origLen} ${Buffer.from(r.frame).toString("hex")}`);

describe("pcap writer", () => {
  it("writes the nanosecond little-endian header Wireshark expects, Ethernet link type", () => {
    const sink = new MemorySink();
    new PcapWriter(sink, { snaplen: 9000 }).close();
    const b = sink.bytes();
    expect(b.length).toBe(24);
    const dv = new DataView(b.buffer);
    expect(dv.getUint32(0, true)).toBe(PCAP_MAGIC_NS);
    expect(Array.from(b.subarray(0, 4))).toEqual([0x4d, 0x3c, 0xb2, 0xa1]);
    expect([dv.getUint16(4, true), dv.getUint16(6, true)]).toEqual([2, 4]);
    expect(dv.getUint32(16, true)).toBe(9000);
    expect(dv.getUint32(20, true)).toBe(LINKTYPE_ETHERNET);
  });

  it("round-trips frames byte for byte with nanosecond timestamps", () => {
    const fs_ = frames(200);
    const sink = new MemorySink();
    const w = new PcapWriter(sink, { bufferBytes: 10_000 }); // smaller than a few frames: many flushes
    for (const f of fs_) w.record(f.ns, f.frame);
    w.close();
    const { header, records } = readPcap(sink.bytes());
    expect(header).toMatchObject({ resolution: "ns", littleEndian: true, linkType: LINKTYPE_ETHERNET });
    expect(records).toHaveLength(fs_.length);
    records.forEach((r, i) => {
      expect(r.number).toBe(i + 1);
      expect(r.ns).toBe(fs_[i]!.ns);
      expect(r.origLen).toBe(fs_[i]!.frame.length);
      expect(Buffer.compare(r.frame, fs_[i]!.frame)).toBe(0);
    });
    // The same records with a large buffer give the same bytes: buffering does not show in the file.
    const one = new MemorySink();
    const w1 = new PcapWriter(one);
    for (const f of fs_) w1.record(f.ns, f.frame);
    w1.close();
    expect(Buffer.compare(one.bytes(), sink.bytes())).toBe(0);
  });

  it("splits a virtual-clock time into seconds and nanoseconds", () => {
    const sink = new MemorySink();
    const w = new PcapWriter(sink);
    w.record(4_000_000_123.4, new Uint8Array(60));
    w.record(999_999_999, new Uint8Array(60));
    w.close();
    const dv = new DataView(sink.bytes().buffer);
    expect([dv.getUint32(24, true), dv.getUint32(28, true)]).toEqual([4, 123]);
    expect([dv.getUint32(24 + 76, true), dv.getUint32(28 + 76, true)]).toEqual([0, 999_999_999]);
  });

  it("cuts frames at the snap length and keeps the wire length", () => {
    const sink = new MemorySink();
    const w = new PcapWriter(sink, { snaplen: 64 });
    w.record(5, new Uint8Array(1500).fill(7));
    w.close();
    const [r] = readPcap(sink.bytes()).records;
    expect(r!.frame.length).toBe(64);
    expect(r!.origLen).toBe(1500);
  });

  it("streams to a file as it goes, not at close", () => {
    const file = path.join(tmp, "stream.pcap");
    const w = createPcapFile(file, { bufferBytes: 4096 });
    const fs_ = frames(50, 3);
    for (const f of fs_) w.record(f.ns, f.frame);
    expect(fs.statSync(file).size).toBeGreaterThan(fs_.slice(0, 40).reduce((a, f) => a + f.frame.length, 0));
    w.close();
    const { records } = readPcapFile(file);
    expect(records.map((r) => Buffer.from(r.frame).toString("hex"))).toEqual(fs_.map((f) => Buffer.from(f.frame).toString("hex")));
  });
});

describe("pcap reader", () => {
  it("reads microsecond and big-endian captures, timestamps in ns", () => {
    const recs = [{ sec: 1, frac: 250_000, bytes: [1, 2, 3] }, { sec: 2, frac: 1, bytes: [4, 5] }];
    for (const le of [true, false]) {
      const us = readPcap(handMade({ magic: PCAP_MAGIC_US, le, linkType: 1, recs }));
      expect(us.header).toMatchObject({ resolution: "us", littleEndian: le });
      expect(us.records.map((r) => r.ns)).toEqual([1_250_000_000, 2_000_001_000]);
      expect(us.records.map((r) => Array.from(r.frame))).toEqual([[1, 2, 3], [4, 5]]);
      const ns = readPcap(handMade({ magic: PCAP_MAGIC_NS, le, linkType: 1, recs }));
      expect(ns.records.map((r) => r.ns)).toEqual([1_000_250_000, 2_000_000_001]);
    }
  });

  it("gives the same records whatever the chunking of the input", () => {
    const sink = new MemorySink();
    const w = new PcapWriter(sink);
    for (const f of frames(20, 5)) w.record(f.ns, f.frame);
    w.close();
    const bytes = sink.bytes();
    const whole = key(readPcap(bytes).records);
    for (const step of [1, 7, 4096]) {
      const p = new PcapParser();
      const got = [];
      for (let at = 0; at < bytes.length; at += step) got.push(...p.push(bytes.subarray(at, at + step)));
      p.end();
      expect(key(got)).toEqual(whole);
    }
    // And through the file reader with a small read size.
    const file = path.join(tmp, "chunks.pcap");
    fs.writeFileSync(file, bytes);
    const r = new PcapFileReader(file, 100);
    expect(r.header().linkType).toBe(1);
    const got = [];
    for (const b of r.batches()) got.push(...b);
    r.close();
    expect(key(got)).toEqual(whole);
  });

  it("names pcapng, other formats, other link types and truncation", () => {
    const ng = new Uint8Array([0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1c, 0, 0, 0]);
    expect(() => readPcap(ng)).toThrow(/pcapng.*editcap -F pcap/);
    expect(() => new PcapParser().push(ng.subarray(0, 8))).toThrow(PcapError); // told before the header is whole
    expect(() => readPcap(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))).toThrow(/not a pcap file \(magic 0x47455420\)/);
    expect(() => readPcap(new Uint8Array(0))).toThrow(/empty file/);
    expect(parsePcapHeader(handMade({ magic: PCAP_MAGIC_US, le: true, linkType: 113, recs: [] })).linkType).toBe(113);
    const cut = handMade({ magic: PCAP_MAGIC_NS, le: true, linkType: 1, recs: [{ sec: 0, frac: 0, bytes: [1, 2, 3, 4] }, { sec: 0, frac: 1, bytes: [5, 6, 7, 8] }] });
    expect(() => readPcap(cut.subarray(0, cut.length - 2))).toThrow(/truncated: it ends inside frame 2/);
  });
});
