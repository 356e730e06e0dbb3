// The Ethernet fabric between cards: links (link.ts) between card ports, and the step
// that moves frames, once per poll round, in bulk (DESIGN rule 2):
//
//   step(now):  1. every card's TX ring is read in one pass; each frame gets its arrival
//                  time from its link direction (serialization, latency, faults: link.ts);
//               2. every frame whose arrival time is ≤ now, in (arrival, send order), is
//                  copied into its receiver's RX ring; each ring's producer index is published
//                  once, and each TX ring's consumer index moves past the frames that are done.
//
// One copy per frame: a frame stays in its TX slot while it is on the wire (the slot is
// released, in ring order, once the frame is delivered or dropped), so the sender's TX ring
// also holds what is in flight. Only a frame that a fault changes (corrupted, held back by
// reordering or an injected delay, duplicated) is copied into the fabric's own frame pool.
//
// A full RX ring is never a silent loss. rxFull "pause" (default) makes the frame wait in
// a per-receiver queue (counted waited_ring_full) and, while more than pauseFrames wait
// for a receiver, stops draining the TX ring of any card whose next frame goes to it (like
// PFC: the sender's own TX ring then fills and its firmware sees back-pressure; counted
// tx_paused). rxFull "drop" tail-drops the frame (counted dropped_ring_full).
//
// Capture: FabricOptions.capture gets every frame that crosses any link, one pcap for the
// whole fabric (capturePoint "rx", the default: at the receiving port, at arrival time,
// after loss, corruption, duplication and reordering, in arrival order, so timestamps never
// go back; "tx": at the sending port when its serialization starts, before any fault, so a
// lost frame is in the capture; timestamps are then ordered per link, not across links).
// Classic pcap has no per-frame comments: the direction of a frame is told by its Ethernet
// and IP addresses; for one file per link, give LinkOptions.capture to each link.
//
// Deterministic: the virtual clock and per-direction seeded PRNGs decide everything, ties
// in arrival time go by send order; the same seed and the same traffic give the same
// deliveries, byte for byte.
import * as M from "../../assembly/memmap.js";
import { Link, LinkDir, DIR_STAT_NAMES, emptyDirStats, type ArmedFault, type DirStats, type LinkEnd, type LinkOptions } from "./link.js";
import { CONS_OFF, PROD_OFF, rxSlot, txSlot, type NetEndpoint } from "./ring.js";
import type { PcapWriter } from "./pcap.js";

/**
 * Frames up to this many bytes are copied a 32-bit word at a time: a subarray per copy costs
 * more (measured in Node 20: 64 bytes 43 ns by words, 105 ns by set(subarray); a byte loop over
 * a wasm memory's Uint8Array 390 ns). Frame areas are word aligned and a whole number of words
 * long, so rounding the length up stays inside the slot.
 */
const SMALL_COPY = 128;

function copy(dst: Uint8Array, dst32: Int32Array, at: number, src: Uint8Array, src32: Int32Array, from: number, len: number): void {
  if (len <= SMALL_COPY) {
    const n = (len + 3) >> 2, d = at >> 2, s = from >> 2;
    for (let i = 0; i < n; i++) dst32[d + i] = src32[s + i]!;
  } else dst.set(src.subarray(from, from + len), at);
}
if ((M.NET_TX_SLOTS | M.NET_RX_SLOTS | M.NET_SLOT_SIZE | M.NET_SLOT_HDR | M.NET_FRAME_MAX) & 3) throw new Error("fabric: frame slots must be word aligned");

/** Ports per card the fabric can address: 0..MAX_PORTS-1. */
export const MAX_PORTS = 256;
/** Bytes of one frame in the fabric's pool: a slot's frame area, rounded up to 64. */
const POOL_SLOT = Math.ceil(M.NET_FRAME_MAX / 64) * 64;
const POOL_INITIAL = 256;

export interface FabricOptions {
  /** Seed of every link's fault PRNGs (default 1). */
  seed?: number;
  /** What a full RX ring does to an arriving frame (default "pause"). */
  rxFull?: "pause" | "drop";
  /** rxFull "pause": frames waiting for one receiver before its senders stop being drained (default NET_RING_ENTRIES). */
  pauseFrames?: number;
  /** Every frame that crosses any link goes here. */
  capture?: PcapWriter;
  /** Where frames are captured (default "rx"; see the top of this file). */
  capturePoint?: "rx" | "tx";
  /**
   * Called for every frame sent and arriving, and every link going down or up (tracing). Costs
   * nothing when absent. Can be set or cleared later through Fabric.onEvent.
   */
  onEvent?: (e: FabricEvent) => void;
}

/**
 * What onEvent gets. A "tx" frame event when a frame is put on a wire (dropped: lost or link
 * down there), an "rx" one when it arrives (dropped: link down, RX ring full under rxFull
 * "drop"). `bytes` is a view valid during the call only.
 */
export type FabricEvent =
  | { kind: "frame"; link: string; way: "ab" | "ba"; dir: "tx" | "rx"; ns: number; bytes: Uint8Array; dropped?: "lost" | "link_down" | "ring_full" }
  | { kind: "link"; link: string; ns: number; up: boolean };

/** Fabric-wide counters: frames the fabric could not move, by reason, and pauses. */
export interface FabricCounters {
  /** TX frames on a port with no link. */
  err_no_link: number;
  /** TX slots with a length of 0 or above NET_FRAME_MAX. */
  err_bad_frame_len: number;
  /** A TX ring whose producer was more than NET_RING_ENTRIES ahead of the consumer; the ring was skipped to the producer. */
  err_tx_ring_corrupt: number;
  /** An RX ring whose indexes were inconsistent; taken as full. */
  err_rx_ring_corrupt: number;
  /** TX drains stopped because the next frame's receiver had pauseFrames frames waiting. */
  tx_paused: number;
}

export interface FabricStats {
  counters: FabricCounters;
  links: Record<string, { ab: DirStats; ba: DirStats }>;
  /** Sums over every direction of every link. */
  total: DirStats;
  /** Frames in flight on the wires and waiting for RX ring space. */
  inFlight: number;
  waiting: number;
}

/** Frames of one link direction in arrival order (arrival times never go back on a direction's wire). */
interface DirQueue {
  q: Int32Array;
  head: number;
  n: number;
}

interface Endpoint {
  readonly ep: NetEndpoint;
  readonly index: number;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly dv: DataView;
  // TX ring: frames [txCons, txNext) were read; txFlags per slot: TX_REF (on the wire,
  // bytes still in the slot) or TX_DONE (may be released); txRefs counts TX_REF slots.
  txNext: number;
  txCons: number;
  readonly txFlags: Uint8Array;
  txRefs: number;
  txDirty: boolean;
  /** Link direction leaving each port. */
  readonly ports: (LinkDir | undefined)[];
  /** Frames (pool slots) waiting for RX ring space, FIFO from waitHead. */
  wait: number[];
  waitHead: number;
  // RX ring state cached during one step.
  rxProd: number;
  rxSpace: number;
  rxDirty: boolean;
}

const TX_REF = 1;
const TX_DONE = 2;

export class Fabric {
  readonly links: Link[] = [];
  readonly counters: FabricCounters = { err_no_link: 0, err_bad_frame_len: 0, err_tx_ring_corrupt: 0, err_rx_ring_corrupt: 0, tx_paused: 0 };
  private readonly eps: Endpoint[] = [];
  private readonly byMemory = new Map<WebAssembly.Memory, number>();
  private readonly dirList: LinkDir[] = [];
  private readonly seed: number;
  private readonly drop: boolean;
  private readonly pauseFrames: number;
  private readonly capture: PcapWriter | undefined;
  private readonly captureRx: boolean;
  private anyLinkCapture = false;
  /**
   * Every frame sent and arriving, every link going down or up (FabricOptions.onEvent). Set it
   * only while someone listens: when undefined, a frame costs one field check.
   */
  onEvent: ((e: FabricEvent) => void) | undefined;
  private lastNow = 0;
  private lastStart = 0;

  // Frames in flight: metadata in parallel typed arrays, indexed by a frame id. A frame's
  // bytes are in endpoint src[id]'s TX slot txIdx[id] at off[id], or (src -1) in the pool's
  // POOL_SLOT bytes of that id (pool pages never written are never touched).
  private cap = POOL_INITIAL;
  private data = new Uint8Array(POOL_INITIAL * POOL_SLOT);
  private data32 = new Int32Array(this.data.buffer);
  private src = new Int32Array(POOL_INITIAL).fill(-1);
  private off = new Int32Array(POOL_INITIAL);
  private txIdx = new Uint32Array(POOL_INITIAL);
  private len = new Int32Array(POOL_INITIAL);
  private dirOf = new Int32Array(POOL_INITIAL);
  private time = new Float64Array(POOL_INITIAL);
  private seq = new Float64Array(POOL_INITIAL);
  private free = new Int32Array(POOL_INITIAL);
  private freeTop = 0;
  private nextSeq = 0;
  // Frames in arrival order per link direction, and a min-heap by (time, seq) for the frames
  // that left that order (held back by reordering, delayed duplicates).
  private readonly queues: DirQueue[] = [];
  private heap = new Int32Array(POOL_INITIAL);
  private heapN = 0;
  private onWire = 0;
  private waitingTotal = 0;

  constructor(opts: FabricOptions = {}) {
    this.seed = (opts.seed ?? 1) >>> 0;
    this.drop = (opts.rxFull ?? "pause") === "drop";
    this.pauseFrames = opts.pauseFrames ?? M.NET_RING_ENTRIES;
    if (!(this.pauseFrames >= 1)) throw new RangeError(`fabric: pauseFrames must be ≥ 1, got ${opts.pauseFrames}`);
    this.capture = opts.capture;
    this.captureRx = (opts.capturePoint ?? "rx") === "rx";
    this.onEvent = opts.onEvent;
    for (let i = 0; i < POOL_INITIAL; i++) this.free[i] = POOL_INITIAL - 1 - i;
    this.freeTop = POOL_INITIAL;
  }

  /** Connect port a.port of card a.card with port b.port of card b.card (full duplex). */
  connect(a: LinkEnd, b: LinkEnd, opts: LinkOptions = {}): Link {
    const ia = this.endpoint(a.card), ib = this.endpoint(b.card);
    for (const [e, end] of [[ia, a], [ib, b]] as const) {
      if (!Number.isInteger(end.port) || end.port < 0 || end.port >= MAX_PORTS) throw new RangeError(`fabric: port ${end.port} is not in 0..${MAX_PORTS - 1}`);
      if (this.eps[e]!.ports[end.port]) throw new RangeError(`fabric: port ${end.port} of that card is already linked (${this.eps[e]!.ports[end.port]!.link.name})`);
    }
    if (ia === ib && a.port === b.port) throw new RangeError(`fabric: a link needs two different ports`);
    const name = opts.name ?? `link${this.links.length}`;
    if (this.links.some((l) => l.name === name)) throw new RangeError(`fabric: a link named ${name} exists already`);
    const link = new Link(name, this.links.length, a, b, [ia, ib], opts, this.seed, opts.capture);
    this.links.push(link);
    this.eps[ia]!.ports[a.port] = link.dirs[0];
    this.eps[ib]!.ports[b.port] = link.dirs[1];
    this.dirList.push(link.dirs[0], link.dirs[1]);
    this.queues.push({ q: new Int32Array(64), head: 0, n: 0 }, { q: new Int32Array(64), head: 0, n: 0 });
    link.onChange = (up) => this.onEvent?.({ kind: "link", link: link.name, ns: this.lastNow, up });
    if (opts.capture) this.anyLinkCapture = true;
    return link;
  }

  private endpoint(card: NetEndpoint): number {
    let i = this.byMemory.get(card.memory);
    if (i !== undefined) return i;
    if (card.memory.buffer.byteLength < M.CARD_FIXED_END) throw new RangeError("fabric: that memory is smaller than the fixed part of the memory map (no frame rings)");
    i = this.eps.length;
    const dv = new DataView(card.memory.buffer);
    const cons = dv.getUint32(M.NET_TX_CTRL + CONS_OFF, true);
    this.eps.push({
      ep: card, index: i, u8: new Uint8Array(card.memory.buffer), i32: new Int32Array(card.memory.buffer, 0, card.memory.buffer.byteLength >> 2), dv,
      txNext: cons, txCons: cons, txFlags: new Uint8Array(M.NET_RING_ENTRIES), txRefs: 0, txDirty: false,
      ports: [], wait: [], waitHead: 0, rxProd: 0, rxSpace: 0, rxDirty: false,
    });
    this.byMemory.set(card.memory, i);
    return i;
  }

  /**
   * One round at virtual time `now` (ns): drain every TX ring, then deliver every frame
   * that has arrived by `now` into the RX rings. Returns the frames delivered.
   */
  step(now: number): number {
    this.lastNow = now;
    for (const e of this.eps) this.drainTx(e, now);
    for (const e of this.eps) this.openRx(e);
    let delivered = 0;
    if (this.waitingTotal > 0) for (const e of this.eps) delivered += this.flushWait(e);
    // Merge the direction queues and the heap by (arrival, send order).
    const queues = this.queues, nq = queues.length;
    while (this.onWire > 0) {
      const time = this.time, seq = this.seq;
      let s = -1, from = -1, bt = 0, bs = 0;
      if (this.heapN > 0) {
        const h = this.heap[0]!;
        if (time[h]! <= now) { s = h; bt = time[h]!; bs = seq[h]!; }
      }
      for (let d = 0; d < nq; d++) {
        const Q = queues[d]!;
        if (Q.n === 0) continue;
        const c = Q.q[Q.head]!;
        const t = time[c]!;
        if (t > now) continue;
        if (s < 0 || t < bt || (t === bt && seq[c]! < bs)) { s = c; from = d; bt = t; bs = seq[c]!; }
      }
      if (s < 0) break;
      if (from < 0) this.pop();
      else { const Q = queues[from]!; Q.head = (Q.head + 1) & (Q.q.length - 1); Q.n--; }
      this.onWire--;
      const ld = this.dirList[this.dirOf[s]!]!;
      if (!ld.link.up) {
        ld.stats.dropped_link_down++;
        if (this.onEvent) this.rxEvent(ld, s, bt, "link_down");
        this.release(s);
        continue;
      }
      if (this.captureRx) this.record(ld, bt, this.src[s]! < 0 ? this.data : this.eps[this.src[s]!]!.u8, this.off[s]!, this.len[s]!);
      const e = this.eps[ld.toIndex]!;
      const fits = e.wait.length === e.waitHead && e.rxSpace > 0;
      if (this.onEvent) this.rxEvent(ld, s, bt, fits || !this.drop ? undefined : "ring_full");
      if (fits) {
        this.put(e, ld, s);
        delivered++;
      } else if (this.drop) {
        ld.stats.dropped_ring_full++;
        this.release(s);
      } else {
        ld.stats.waited_ring_full++;
        e.wait.push(s);
        this.waitingTotal++;
      }
    }
    for (const e of this.eps) {
      if (e.rxDirty) { e.dv.setUint32(M.NET_RX_CTRL + PROD_OFF, e.rxProd, true); e.rxDirty = false; }
      if (e.txDirty) this.releaseTx(e);
    }
    return delivered;
  }

  /** Virtual time of the next arrival (Infinity when nothing is on the wires); frames waiting for ring space are due now. */
  nextArrivalNs(): number {
    if (this.waitingTotal > 0) return this.lastNow;
    let t = this.heapN > 0 ? this.time[this.heap[0]!]! : Infinity;
    for (const Q of this.queues) if (Q.n > 0 && this.time[Q.q[Q.head]!]! < t) t = this.time[Q.q[Q.head]!]!;
    return t;
  }

  /** Frames on the wires plus frames waiting for RX ring space. */
  inFlight(): number { return this.onWire + this.waitingTotal; }

  stats(): FabricStats {
    const total = emptyDirStats();
    const links: FabricStats["links"] = {};
    for (const l of this.links) {
      const s = l.stats();
      links[l.name] = s;
      for (const k of DIR_STAT_NAMES) total[k] += s.ab[k] + s.ba[k];
    }
    return { counters: { ...this.counters }, links, total, inFlight: this.onWire, waiting: this.waitingTotal };
  }

  /** Flush and close the captures (the fabric-wide one and the links'). */
  close(): void {
    this.capture?.close();
    for (const l of this.links) l.capture?.close();
  }

  // ---- TX side ----

  private drainTx(e: Endpoint, now: number): void {
    const dv = e.dv;
    const prod = dv.getUint32(M.NET_TX_CTRL + PROD_OFF, true);
    const cons = dv.getUint32(M.NET_TX_CTRL + CONS_OFF, true);
    if (cons !== e.txCons && e.txRefs === 0) { e.txNext = e.txCons = cons; e.txFlags.fill(0); } // someone else consumed: follow
    let next = e.txNext;
    if (prod === next) return;
    if (((prod - e.txCons) >>> 0) > M.NET_RING_ENTRIES) {
      // The firmware wrote past the frames it had handed over: nothing in the ring can be
      // trusted. Skip to its producer (frames still on the wire carry what the slots hold now).
      this.counters.err_tx_ring_corrupt++;
      for (let id = 0; id < this.cap; id++) {
        if (this.src[id] !== e.index) continue; // frames still in this ring's slots move to the pool
        copy(this.data, this.data32, id * POOL_SLOT, e.u8, e.i32, this.off[id]!, this.len[id]!);
        this.src[id] = -1;
        this.off[id] = id * POOL_SLOT;
      }
      e.txNext = e.txCons = prod;
      e.txFlags.fill(0);
      e.txRefs = 0;
      dv.setUint32(M.NET_TX_CTRL + CONS_OFF, prod, true);
      return;
    }
    const flags = e.txFlags;
    for (; next !== prod; next = (next + 1) >>> 0) {
      const s = txSlot(next);
      const len = dv.getUint32(s + M.NET_SLOT_LEN_OFF, true);
      const port = dv.getUint32(s + M.NET_SLOT_PORT_OFF, true);
      if (len === 0 || len > M.NET_FRAME_MAX) { this.counters.err_bad_frame_len++; flags[next % M.NET_RING_ENTRIES] = TX_DONE; continue; }
      const ld = port < MAX_PORTS ? e.ports[port] : undefined;
      if (!ld) { this.counters.err_no_link++; flags[next % M.NET_RING_ENTRIES] = TX_DONE; continue; }
      if (!this.drop) {
        const r = this.eps[ld.toIndex]!;
        if (r.wait.length - r.waitHead >= this.pauseFrames) { this.counters.tx_paused++; break; }
      }
      const fate = this.send(ld, e, next, s + M.NET_SLOT_HDR, len, now);
      if (this.onEvent) {
        this.onEvent({
          kind: "frame", link: ld.link.name, way: ld.dir === 0 ? "ab" : "ba", dir: "tx", ns: this.lastStart,
          bytes: e.u8.subarray(s + M.NET_SLOT_HDR, s + M.NET_SLOT_HDR + len), ...(fate ? { dropped: fate } : {}),
        });
      }
    }
    e.txNext = next;
    this.releaseTx(e);
  }

  /** Move e's TX consumer index past the frames that are done, and publish it. */
  private releaseTx(e: Endpoint): void {
    e.txDirty = false;
    const flags = e.txFlags;
    let c = e.txCons;
    while (c !== e.txNext && flags[c % M.NET_RING_ENTRIES] === TX_DONE) { flags[c % M.NET_RING_ENTRIES] = 0; c = (c + 1) >>> 0; }
    if (c === e.txCons) return;
    e.txCons = c;
    e.dv.setUint32(M.NET_TX_CTRL + CONS_OFF, c, true);
  }

  /** Put frame `idx` of e's TX ring (bytes at off) on a link direction: serialization, faults, arrival time. */
  private send(ld: LinkDir, from: Endpoint, idx: number, off: number, len: number, now: number): "lost" | "link_down" | undefined {
    const st = ld.stats;
    const o = ld.link.options;
    const slot = idx % M.NET_RING_ENTRIES;
    st.frames++;
    st.bytes += len;
    const start = now > ld.busyUntil ? now : ld.busyUntil;
    const end = start + (len + o.wireOverhead) * ld.nsPerByte;
    ld.busyUntil = end;
    this.lastStart = start;
    if (!this.captureRx) this.record(ld, start, from.u8, off, len);
    let arrival = end + o.latencyNs;
    from.txFlags[slot] = TX_DONE; // unless the frame stays in its slot (below)
    if (!ld.link.up) { st.dropped_link_down++; return "link_down"; }
    const p = ld.prng;
    // Faults, drawn in a fixed order: injected (first match), loss, corruption, reordering, duplication.
    let corruptAt = -1, held = false;
    if (ld.armed.length > 0) {
      const a = this.injected(ld, from.u8.subarray(off, off + len));
      if (a) {
        const k = a.fault.kind;
        if (k === "drop") { st.lost++; return "lost"; }
        if (k === "delay") { arrival += a.fault.delayNs ?? 10_000; st.delayed++; held = true; }
        else corruptAt = (a.fault.bit ?? p.below(len * 8)) % (len * 8);
      }
    }
    if (ld.lossT > 0 && p.next() < ld.lossT) { st.lost++; return "lost"; }
    let corruptRand = -1;
    if (ld.corruptT > 0 && p.next() < ld.corruptT) corruptRand = p.below(len * 8);
    if (ld.reorderT > 0 && p.next() < ld.reorderT) { arrival += o.reorderNs; st.reordered++; held = true; }
    const dup = ld.dupT > 0 && p.next() < ld.dupT;
    const id = this.alloc();
    this.len[id] = len;
    if (corruptAt < 0 && corruptRand < 0 && !held && !dup) {
      // Unchanged and in order: the bytes stay in the TX slot until delivery.
      this.src[id] = from.index;
      this.off[id] = off;
      this.txIdx[id] = idx;
      from.txFlags[slot] = TX_REF;
      from.txRefs++;
    } else {
      const base = id * POOL_SLOT;
      const data = this.data;
      copy(data, this.data32, base, from.u8, from.i32, off, len);
      this.src[id] = -1;
      this.off[id] = base;
      for (const bit of [corruptAt, corruptRand]) {
        if (bit < 0) continue;
        data[base + (bit >>> 3)]! ^= 1 << (bit & 7);
        st.corrupted++;
      }
    }
    this.schedule(id, ld, arrival, held);
    if (dup) {
      const d = this.alloc(); // may grow the pool: read this.data after it
      this.len[d] = len;
      this.src[d] = -1;
      this.off[d] = d * POOL_SLOT;
      this.data.copyWithin(d * POOL_SLOT, id * POOL_SLOT, id * POOL_SLOT + len);
      this.schedule(d, ld, arrival + o.dupDelayNs, held || o.dupDelayNs > 0);
      st.duplicated++;
    }
    return undefined;
  }

  private rxEvent(ld: LinkDir, s: number, ns: number, dropped: "link_down" | "ring_full" | undefined): void {
    const src = this.src[s]!, off = this.off[s]!;
    const bytes = (src < 0 ? this.data : this.eps[src]!.u8).subarray(off, off + this.len[s]!);
    this.onEvent!({ kind: "frame", link: ld.link.name, way: ld.dir === 0 ? "ab" : "ba", dir: "rx", ns, bytes, ...(dropped ? { dropped } : {}) });
  }

  /** The first armed fault of ld that matches the frame, used up by one; undefined when none does. */
  private injected(ld: LinkDir, frame: Uint8Array): ArmedFault | undefined {
    for (let i = 0; i < ld.armed.length; i++) {
      const a = ld.armed[i]!;
      if (a.fault.match && !a.fault.match(frame)) continue;
      if (--a.left === 0) ld.armed.splice(i, 1);
      return a;
    }
    return undefined;
  }

  private record(ld: LinkDir, ns: number, bytes: Uint8Array, off: number, len: number): void {
    this.capture?.record(ns, bytes, off, len);
    if (this.anyLinkCapture) ld.link.capture?.record(ns, bytes, off, len);
  }

  // ---- RX side ----

  private openRx(e: Endpoint): void {
    const prod = e.dv.getUint32(M.NET_RX_CTRL + PROD_OFF, true);
    const used = (prod - e.dv.getUint32(M.NET_RX_CTRL + CONS_OFF, true)) >>> 0;
    e.rxProd = prod;
    if (used > M.NET_RING_ENTRIES) { this.counters.err_rx_ring_corrupt++; e.rxSpace = 0; }
    else e.rxSpace = M.NET_RING_ENTRIES - used;
  }

  private put(e: Endpoint, ld: LinkDir, s: number): void {
    const slot = rxSlot(e.rxProd);
    const l = this.len[s]!;
    e.dv.setUint32(slot + M.NET_SLOT_LEN_OFF, l, true);
    e.dv.setUint32(slot + M.NET_SLOT_PORT_OFF, ld.to.port, true);
    e.dv.setUint32(slot + 8, 0, true);
    e.dv.setUint32(slot + 12, 0, true);
    const src = this.src[s]!;
    if (src >= 0) { const from = this.eps[src]!; copy(e.u8, e.i32, slot + M.NET_SLOT_HDR, from.u8, from.i32, this.off[s]!, l); }
    else copy(e.u8, e.i32, slot + M.NET_SLOT_HDR, this.data, this.data32, this.off[s]!, l);
    e.rxProd = (e.rxProd + 1) >>> 0;
    e.rxSpace--;
    e.rxDirty = true;
    ld.stats.delivered++;
    this.release(s);
  }

  private flushWait(e: Endpoint): number {
    let n = 0;
    while (e.waitHead < e.wait.length && e.rxSpace > 0) {
      const s = e.wait[e.waitHead++]!;
      this.put(e, this.dirList[this.dirOf[s]!]!, s);
      n++;
    }
    this.waitingTotal -= n;
    if (e.waitHead === e.wait.length) { e.wait.length = 0; e.waitHead = 0; }
    else if (e.waitHead > 4096 && e.waitHead * 2 > e.wait.length) { e.wait = e.wait.slice(e.waitHead); e.waitHead = 0; }
    return n;
  }

  // ---- frame pool and arrival heap ----

  private alloc(): number {
    if (this.freeTop === 0) this.grow();
    return this.free[--this.freeTop]!;
  }

  /** Frame s is delivered or dropped: its id is free again, and its TX slot, if it was in one, is done. */
  private release(s: number): void {
    const src = this.src[s]!;
    if (src >= 0) {
      const e = this.eps[src]!;
      e.txFlags[this.txIdx[s]! % M.NET_RING_ENTRIES] = TX_DONE;
      e.txRefs--;
      e.txDirty = true;
    }
    this.src[s] = -1;
    this.free[this.freeTop++] = s;
  }

  private grow(): void {
    const old = this.cap, cap = old * 2;
    const data = new Uint8Array(cap * POOL_SLOT); data.set(this.data); this.data = data; this.data32 = new Int32Array(data.buffer);
    const src = new Int32Array(cap).fill(-1); src.set(this.src); this.src = src;
    const off = new Int32Array(cap); off.set(this.off); this.off = off;
    const txIdx = new Uint32Array(cap); txIdx.set(this.txIdx); this.txIdx = txIdx;
    const len = new Int32Array(cap); len.set(this.len); this.len = len;
    const dirOf = new Int32Array(cap); dirOf.set(this.dirOf); this.dirOf = dirOf;
    const time = new Float64Array(cap); time.set(this.time); this.time = time;
    const seq = new Float64Array(cap); seq.set(this.seq); this.seq = seq;
    const heap = new Int32Array(cap); heap.set(this.heap); this.heap = heap;
    const free = new Int32Array(cap);
    for (let i = 0; i < old; i++) free[i] = cap - 1 - i; // the new slots old..cap-1
    this.free = free;
    this.freeTop = old;
    this.cap = cap;
  }

  /** Frame s arrives at `at`: in its direction's order, or (held) out of it, through the heap. */
  private schedule(s: number, ld: LinkDir, at: number, held: boolean): void {
    const dir = ld.link.index * 2 + ld.dir;
    this.dirOf[s] = dir;
    this.time[s] = at;
    this.seq[s] = this.nextSeq++;
    this.onWire++;
    if (!held) {
      const Q = this.queues[dir]!;
      if (Q.n === Q.q.length) {
        const q = new Int32Array(Q.q.length * 2);
        for (let i = 0; i < Q.n; i++) q[i] = Q.q[(Q.head + i) & (Q.q.length - 1)]!;
        Q.q = q;
        Q.head = 0;
      }
      Q.q[(Q.head + Q.n) & (Q.q.length - 1)] = s;
      Q.n++;
      return;
    }
    // sift up
    const heap = this.heap, time = this.time, seq = this.seq;
    let i = this.heapN++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const q = heap[parent]!;
      if (time[q]! < at || (time[q] === at && seq[q]! < seq[s]!)) break;
      heap[i] = q;
      i = parent;
    }
    heap[i] = s;
  }

  private pop(): number {
    const heap = this.heap, time = this.time, seq = this.seq;
    const top = heap[0]!;
    const n = --this.heapN;
    if (n === 0) return top;
    const last = heap[n]!;
    const lt = time[last]!, ls = seq[last]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n) {
        const a = heap[c]!, b = heap[r]!;
        if (time[b]! < time[a]! || (time[b] === time[a] && seq[b]! < seq[a]!)) c = r;
      }
      const h = heap[c]!;
      if (lt < time[h]! || (lt === time[h] && ls < seq[h]!)) break;
      heap[i] = h;
      i = c;
    }
    heap[i] = last;
    return top;
  }
}
