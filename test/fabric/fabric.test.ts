// The fabric moves frames between the cards' TX and RX rings on the virtual clock:
// bandwidth and latency as configured, faults at their seeded rates and exactly as
// counted, the same deliveries for the same seed, and never a silent loss.
import { describe, it, expect } from "vitest";
import * as M from "../../assembly/memmap.js";
import { Fabric } from "../../host/fabric/fabric.js";
import { ETH_WIRE_OVERHEAD, type LinkOptions } from "../../host/fabric/link.js";
import { bareNetMemory, rxDrain, txPush, ringUsed } from "../../host/fabric/ring.js";
import { MemorySink, PcapWriter, readPcap } from "../../host/fabric/pcap.js";

// Three cards' worth of memory (only the fixed part of the map), reused by every test.
const mems = [bareNetMemory(), bareNetMemory(), bareNetMemory()];
function cards(n = 2) {
  for (const m of mems.slice(0, n)) new Uint8Array(m.buffer, M.NET_TX_CTRL, 64).fill(0), new Uint8Array(m.buffer, M.NET_RX_CTRL, 64).fill(0);
  return mems.slice(0, n).map((memory) => ({ memory }));
}

/** A frame of `len` bytes that says which one it is: seq (u32 LE) repeated. */
function frame(seq: number, len = 64): Uint8Array {
  const f = new Uint8Array(len);
  const dv = new DataView(f.buffer);
  for (let i = 0; i + 4 <= len; i += 4) dv.setUint32(i, seq, true);
  return f;
}

/** seq of a frame by majority over its copies (one flipped bit cannot change it), and whether it was altered. */
function seqOf(f: Uint8Array): { seq: number; altered: boolean } {
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const votes = new Map<number, number>();
  for (let i = 0; i + 4 <= f.length; i += 4) votes.set(dv.getUint32(i, true), (votes.get(dv.getUint32(i, true)) ?? 0) + 1);
  const seq = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  return { seq, altered: votes.size > 1 };
}

describe("links on the virtual clock", () => {
  it("delivers after serialization at the line rate plus latency, per direction", () => {
    const [a, b] = cards();
    const f = new Fabric();
    f.connect({ card: a!, port: 1 }, { card: b!, port: 3 }, { gbps: 10, latencyNs: 2000 });
    const wire = (1000 + ETH_WIRE_OVERHEAD) * 8 / 10; // 819.2 ns per 1000-byte frame at 10 Gbit/s
    for (let i = 0; i < 3; i++) txPush(a!.memory, frame(i, 1000), 1);
    txPush(b!.memory, frame(9, 1000), 3);
    expect(f.step(0)).toBe(0);
    const aTx = () => ringUsed(new DataView(a!.memory.buffer), M.NET_TX_CTRL);
    expect(aTx()).toBe(3); // on the wire: the frames stay in their TX slots until delivered
    expect(f.stats().links.link0!.ab.frames).toBe(3); // read in one pass
    expect(f.nextArrivalNs()).toBeCloseTo(wire + 2000, 6);
    expect(f.step(wire + 1999)).toBe(0);
    expect(f.step(wire + 2000)).toBe(2); // the first a→b frame and the b→a frame: full duplex
    expect(aTx()).toBe(2); // its slot is free again
    expect(rxDrain(b!.memory).map((x) => [x.port, seqOf(x.frame).seq])).toEqual([[3, 0]]);
    expect(rxDrain(a!.memory).map((x) => [x.port, seqOf(x.frame).seq])).toEqual([[1, 9]]);
    // Back to back: each next frame one serialization time later.
    expect(f.nextArrivalNs()).toBeCloseTo(2 * wire + 2000, 6);
    expect(f.step(2 * wire + 2000)).toBe(1);
    expect(f.step(3 * wire + 2000)).toBe(1);
    expect(rxDrain(b!.memory).map((x) => seqOf(x.frame).seq)).toEqual([1, 2]);
    expect(aTx()).toBe(0);
    // An idle wire starts serializing at the send time.
    txPush(a!.memory, frame(3, 1000), 1);
    f.step(50_000);
    expect(f.nextArrivalNs()).toBeCloseTo(50_000 + wire + 2000, 6);
    expect(f.stats().links.link0!.ab).toMatchObject({ frames: 4, bytes: 4000, delivered: 3 });
  });

  it("injects loss, corruption, reordering and duplication at their rates, and counts exactly what it did", () => {
    const [a, b] = cards();
    const f = new Fabric({ seed: 42 });
    const o: LinkOptions = { gbps: 100, latencyNs: 500, loss: 0.01, corrupt: 0.01, reorder: 0.02, duplicate: 0.01, reorderNs: 5000 };
    f.connect({ card: a!, port: 0 }, { card: b!, port: 0 }, o);
    const N = 20_000;
    const seen = new Map<number, number>();
    let altered = 0, late = 0, maxSeq = -1, now = 0, sent = 0;
    const take = () => {
      for (const { frame: fr } of rxDrain(b!.memory)) {
        const { seq, altered: alt } = seqOf(fr);
        if (alt) altered++;
        const k = seen.get(seq) ?? 0;
        seen.set(seq, k + 1);
        if (k === 0 && seq < maxSeq) late++; // arrived after a frame sent later
        maxSeq = Math.max(maxSeq, seq);
      }
    };
    while (sent < N) {
      for (let i = 0; i < 100 && sent < N; i++) txPush(a!.memory, frame(sent++), 0); // ~9.9 ns of wire each
      f.step(now);
      take();
      now += 1000;
    }
    while (f.inFlight() > 0) { now += 1000; f.step(now); take(); }
    const s = f.stats().links.link0!.ab;
    expect(s.frames).toBe(N);
    // Rates within 5 standard deviations of the configured probabilities.
    const within = (count: number, n: number, p: number) => expect(Math.abs(count - n * p)).toBeLessThan(5 * Math.sqrt(n * p * (1 - p)));
    within(s.lost, N, o.loss!);
    const kept = N - s.lost; // the other faults are drawn for frames that were not lost
    within(s.corrupted, kept, o.corrupt!);
    within(s.reordered, kept, o.reorder!);
    within(s.duplicated, kept, o.duplicate!);
    // The receiver sees exactly what the counters say.
    const copies = [...seen.values()];
    expect(s.delivered).toBe(kept + s.duplicated);
    expect(copies.reduce((x, y) => x + y, 0)).toBe(s.delivered);
    expect(seen.size).toBe(kept);
    expect(copies.filter((c) => c === 2)).toHaveLength(s.duplicated);
    expect(Math.max(...copies)).toBe(2);
    expect(altered).toBeGreaterThanOrEqual(s.corrupted); // a duplicated corrupt frame is seen twice
    expect(altered).toBeLessThanOrEqual(2 * s.corrupted);
    // A held-back frame is overtaken by the next ~500 frames; only one sent last could not be.
    expect(late).toBeLessThanOrEqual(s.reordered);
    expect(late).toBeGreaterThanOrEqual(s.reordered - 1);
    expect(s.dropped_ring_full + s.waited_ring_full).toBe(0);
  });

  it("gives the same deliveries for the same seed, and others for another seed", () => {
    const run = (seed: number) => {
      const [a, b] = cards();
      const sink = new MemorySink();
      const f = new Fabric({ seed, capture: new PcapWriter(sink) });
      f.connect({ card: a!, port: 0 }, { card: b!, port: 0 }, { gbps: 25, latencyNs: 800, loss: 0.05, corrupt: 0.05, reorder: 0.1, duplicate: 0.05, reorderNs: 3000 });
      const got: string[] = [];
      let now = 0;
      for (let r = 0; r < 40; r++) {
        for (let i = 0; i < 25; i++) { txPush(a!.memory, frame(r * 100 + i, 60 + i * 40), 0); txPush(b!.memory, frame(1e6 + r * 100 + i, 1500), 0); }
        f.step(now);
        for (const m of [a!, b!]) for (const x of rxDrain(m.memory)) got.push(Buffer.from(x.frame).toString("base64"));
        now += 3000;
      }
      while (f.inFlight() > 0) {
        f.step((now += 3000));
        for (const m of [a!, b!]) for (const x of rxDrain(m.memory)) got.push(Buffer.from(x.frame).toString("base64"));
      }
      f.close();
      return { got, pcap: Buffer.from(sink.bytes()), stats: f.stats() };
    };
    const x = run(7), y = run(7), z = run(8);
    expect(x.got.length).toBeGreaterThan(1800);
    expect(y.got).toEqual(x.got);
    expect(y.pcap.equals(x.pcap)).toBe(true);
    expect(y.stats).toEqual(x.stats);
    expect(z.pcap.equals(x.pcap)).toBe(false);
  });
});

describe("full RX rings and bad TX slots are counted, never silent", () => {
  /** Fill b's RX ring past its size: 2 × 1000 frames from a, b's firmware consuming nothing. */
  function flood(f: Fabric, a: { memory: WebAssembly.Memory }) {
    let delivered = 0;
    for (let r = 0; r < 2; r++) {
      for (let i = 0; i < 1000; i++) expect(txPush(a.memory, frame(r * 1000 + i), 0)).toBe(true);
      f.step(r * 1e9);
      delivered += f.step(r * 1e9 + 1e8);
    }
    return delivered;
  }

  it('rxFull "drop": the frames beyond the ring are tail-dropped and counted', () => {
    const [a, b] = cards();
    const f = new Fabric({ rxFull: "drop" });
    f.connect({ card: a!, port: 0 }, { card: b!, port: 0 });
    expect(flood(f, a!)).toBe(M.NET_RING_ENTRIES);
    const s = f.stats().links.link0!.ab;
    expect(s).toMatchObject({ frames: 2000, delivered: M.NET_RING_ENTRIES, dropped_ring_full: 2000 - M.NET_RING_ENTRIES });
    expect(f.inFlight()).toBe(0);
    expect(rxDrain(b!.memory).map((x) => seqOf(x.frame).seq)).toEqual([...Array(M.NET_RING_ENTRIES).keys()]); // the head kept, in order
  });

  it('rxFull "pause": frames wait, the sender\'s TX ring stops being drained, nothing is lost', () => {
    const [a, b] = cards();
    const f = new Fabric({ rxFull: "pause", pauseFrames: 100 });
    f.connect({ card: a!, port: 0 }, { card: b!, port: 0 });
    expect(flood(f, a!)).toBe(M.NET_RING_ENTRIES);
    expect(f.stats().links.link0!.ab.waited_ring_full).toBe(2000 - M.NET_RING_ENTRIES);
    expect(f.stats().waiting).toBe(2000 - M.NET_RING_ENTRIES);
    // The waiting frames still hold a's TX slots; a's next frames are not sent while b is that far behind.
    const aTx = () => ringUsed(new DataView(a!.memory.buffer), M.NET_TX_CTRL);
    expect(aTx()).toBe(2000 - M.NET_RING_ENTRIES);
    for (let i = 0; i < 10; i++) txPush(a!.memory, frame(2000 + i), 0);
    f.step(2e9);
    expect(aTx()).toBe(2000 - M.NET_RING_ENTRIES + 10);
    expect(f.stats().links.link0!.ab.frames).toBe(2000);
    expect(f.counters.tx_paused).toBeGreaterThan(0);
    // b's firmware catches up: everything arrives, in order, exactly once.
    const got: number[] = [];
    for (let t = 3e9; f.inFlight() > 0 || ringUsed(new DataView(a!.memory.buffer), M.NET_TX_CTRL) > 0 || got.length === 0; t += 1e6) {
      got.push(...rxDrain(b!.memory).map((x) => seqOf(x.frame).seq));
      f.step(t);
    }
    got.push(...rxDrain(b!.memory).map((x) => seqOf(x.frame).seq));
    expect(got).toEqual([...Array(2010).keys()]);
    expect(f.stats().links.link0!.ab).toMatchObject({ frames: 2010, delivered: 2010, dropped_ring_full: 0 });
    expect(aTx()).toBe(0);
  });

  it("counts frames with a bad length, on an unlinked port, and a corrupt TX ring", () => {
    const [a, b] = cards();
    const f = new Fabric();
    f.connect({ card: a!, port: 0 }, { card: b!, port: 0 });
    const dv = new DataView(a!.memory.buffer);
    txPush(a!.memory, frame(1), 5); // port 5: no link
    txPush(a!.memory, frame(2), 0);
    txPush(a!.memory, frame(3), 0);
    const slot = (i: number) => M.NET_TX_SLOTS + i * M.NET_SLOT_SIZE;
    dv.setUint32(slot(1), 0, true); // length 0
    dv.setUint32(slot(2), M.NET_FRAME_MAX + 1, true); // longer than a slot holds
    txPush(a!.memory, frame(4), 0);
    f.step(0);
    f.step(1e6);
    expect(f.counters).toMatchObject({ err_no_link: 1, err_bad_frame_len: 2 });
    expect(rxDrain(b!.memory).map((x) => seqOf(x.frame).seq)).toEqual([4]);
    dv.setUint32(M.NET_TX_CTRL, dv.getUint32(M.NET_TX_CTRL + 4, true) + M.NET_RING_ENTRIES + 5, true); // producer far ahead
    f.step(2e6);
    expect(f.counters.err_tx_ring_corrupt).toBe(1);
    expect(ringUsed(dv, M.NET_TX_CTRL)).toBe(0);
  });

  it("refuses a port linked twice and bad link parameters", () => {
    const [a, b] = cards();
    const f = new Fabric();
    f.connect({ card: a!, port: 0 }, { card: b!, port: 0 });
    expect(() => f.connect({ card: a!, port: 0 }, { card: b!, port: 1 })).toThrow(/port 0 of that card is already linked \(link0\)/);
    expect(() => f.connect({ card: a!, port: 1 }, { card: b!, port: 1 }, { loss: 1.5 })).toThrow(/loss must be a probability/);
    expect(() => f.connect({ card: a!, port: 1 }, { card: b!, port: 1 }, { gbps: 0 })).toThrow(/gbps must be > 0/);
  });
});

describe("link down and up, injected faults", () => {
  it("drops what is sent, and what arrives, while a link is down; counts it", () => {
    const [a, b] = cards();
    const f = new Fabric();
    const l = f.connect({ card: a!, port: 0 }, { card: b!, port: 0 }, { latencyNs: 1000 });
    txPush(a!.memory, frame(1), 0);
    f.step(0); // on the wire
    l.setUp(false);
    txPush(a!.memory, frame(2), 0);
    f.step(500); // sent while down
    f.step(5000); // frame 1 arrives while down
    l.setUp(true);
    txPush(a!.memory, frame(3), 0);
    f.step(6000);
    f.step(10_000);
    expect(rxDrain(b!.memory).map((x) => seqOf(x.frame).seq)).toEqual([3]);
    expect(l.stats().ab).toMatchObject({ frames: 3, delivered: 1, dropped_link_down: 2 });
  });

  it("injects drop, corrupt and delay faults into the frames that match, as many as asked", () => {
    const [a, b] = cards();
    const f = new Fabric();
    const l = f.connect({ card: a!, port: 0 }, { card: b!, port: 0 }, { latencyNs: 1000, gbps: 100 });
    const odd = (fr: Uint8Array) => (fr[0]! & 1) === 1;
    l.inject({ kind: "drop", dir: "ab", count: 2, match: odd }); // frames 1 and 3
    l.inject({ kind: "corrupt", dir: "ab", bit: 8 * 8 + 3, match: (fr) => fr[0] === 4 }); // byte 8 of frame 4
    l.inject({ kind: "delay", dir: "ab", delayNs: 50_000, match: (fr) => fr[0] === 6 });
    const disarm = l.inject({ kind: "drop", dir: "ba" });
    disarm();
    for (let i = 0; i < 8; i++) txPush(a!.memory, frame(i), 0);
    txPush(b!.memory, frame(100), 0);
    f.step(0);
    f.step(20_000);
    const got = rxDrain(b!.memory);
    expect(got.map((x) => seqOf(x.frame).seq)).toEqual([0, 2, 4, 5, 7]);
    expect(got[2]!.frame[8]).toBe(4 ^ (1 << 3));
    expect(rxDrain(a!.memory)).toHaveLength(1); // the disarmed fault did nothing
    f.step(60_000);
    expect(rxDrain(b!.memory).map((x) => seqOf(x.frame).seq)).toEqual([6]);
    expect(l.stats().ab).toMatchObject({ frames: 8, lost: 2, corrupted: 1, delayed: 1, delivered: 6 });
    expect(l.dirs[0].armed).toEqual([]); // all used up
    expect(() => l.inject({ kind: "drop", count: 0 })).toThrow(/count must be a whole number/);
  });
});

describe("events for tracing", () => {
  it("reports each frame sent and arriving, drops with their reason, and links going down and up", () => {
    const [a, b] = cards();
    const ev: string[] = [];
    const f = new Fabric({
      rxFull: "drop",
      onEvent: (e) => ev.push(e.kind === "link" ? `link ${e.link} ${e.up ? "up" : "down"} @${e.ns}` : `${e.dir} ${e.link}.${e.way} #${seqOf(e.bytes).seq} @${e.ns}${e.dropped ? ` ${e.dropped}` : ""}`),
    });
    const l = f.connect({ card: a!, port: 0 }, { card: b!, port: 0 }, { gbps: 8, latencyNs: 100, wireOverhead: 0 }); // 1 ns per byte
    l.inject({ kind: "drop", dir: "ab", match: (fr) => fr[0] === 2 });
    for (let i = 1; i <= 3; i++) txPush(a!.memory, frame(i), 0);
    f.step(0);
    f.step(1000);
    l.setUp(false);
    txPush(b!.memory, frame(9), 0);
    f.step(2000);
    l.setUp(true);
    expect(ev).toEqual([
      "tx link0.ab #1 @0", "tx link0.ab #2 @64 lost", "tx link0.ab #3 @128",
      "rx link0.ab #1 @164", "rx link0.ab #3 @292",
      "link link0 down @1000", "tx link0.ba #9 @2000 link_down", "link link0 up @2000",
    ]);
  });
});

describe("capture", () => {
  it('captures at the receiving port by default (after faults) or at the sending port ("tx", before them)', () => {
    const run = (point: "rx" | "tx") => {
      const [a, b, c] = cards(3);
      const all = new MemorySink(), ab = new MemorySink();
      const f = new Fabric({ seed: 3, capture: new PcapWriter(all), capturePoint: point });
      f.connect({ card: a!, port: 0 }, { card: b!, port: 0 }, { loss: 0.5, capture: new PcapWriter(ab), latencyNs: 1000 });
      f.connect({ card: a!, port: 1 }, { card: c!, port: 0 }, { latencyNs: 1000 });
      for (let i = 0; i < 100; i++) { txPush(a!.memory, frame(i), 0); txPush(a!.memory, frame(1000 + i), 1); }
      f.step(0);
      f.step(1e6);
      f.close();
      return { all: readPcap(all.bytes()).records, ab: readPcap(ab.bytes()).records, lost: f.stats().links.link0!.ab.lost };
    };
    const rx = run("rx"), tx = run("tx");
    expect(tx.ab.map((r) => seqOf(r.frame).seq)).toEqual([...Array(100).keys()]); // every frame sent, the lost ones too
    expect(tx.all).toHaveLength(200);
    expect(rx.lost).toBeGreaterThan(20);
    expect(rx.ab).toHaveLength(100 - rx.lost); // only what arrived
    expect(rx.all).toHaveLength(200 - rx.lost);
    // rx timestamps are arrival times and never go back; the first frame arrives after its latency.
    expect(rx.all[0]!.ns).toBeGreaterThan(1000);
    for (let i = 1; i < rx.all.length; i++) expect(rx.all[i]!.ns).toBeGreaterThanOrEqual(rx.all[i - 1]!.ns);
    expect(tx.ab[0]!.ns).toBe(0);
  });
});
