// A full-duplex Ethernet link between two card ports, as the fabric sees it: per
// direction a wire that serializes one frame after another at the link's bandwidth,
// then a fixed latency, and seeded faults (loss, reordering, duplication, corruption).
// The fabric (fabric.ts) owns the frames; a link direction decides when each arrives.
//
// Timing of a frame of L bytes sent at virtual time t on a direction (all in ns):
//   start   = max(t, end of the previous frame on this direction)
//   end     = start + (L + wireOverhead) * 8 / gbps          serialization
//   arrival = end + latencyNs (+ reorderNs when held back)   propagation, switching
// wireOverhead defaults to 24 bytes: preamble + SFD (8), FCS (4), inter-packet gap (12)
// (IEEE 802.3 clauses 3.1.1, 4.4.2); frames in the rings carry no FCS.
//
// Faults, drawn per frame from the direction's own PRNG in a fixed order (loss, corrupt,
// reorder, duplicate; a draw only when its rate is above 0), so a seed gives the same run:
//   loss       the frame is serialized and never arrives
//   corrupt    one bit of the frame, chosen uniformly, is flipped (a bit error that an
//              FCS-recomputing hop passes on: the receiver's ICRC check must catch it)
//   reorder    the frame is held back reorderNs, so frames sent after it can overtake it
//   duplicate  a second copy arrives dupDelayNs after the first
//
// On top of the seeded faults, a test or the testbed API can take a link down and up
// (frames sent on a down link, or arriving while it is down, are dropped: dropped_link_down)
// and inject faults into chosen frames: Link.inject({ kind: "drop" | "corrupt" | "delay", ... })
// acts on the next `count` frames of a direction that match a predicate, before the seeded draws.
import { Prng, splitmix32 } from "../workload/prng.js";
import type { NetEndpoint } from "./ring.js";
import type { PcapWriter } from "./pcap.js";

/** IEEE 802.3: preamble + start frame delimiter 8 B, FCS 4 B, minimum inter-packet gap 12 B. */
export const ETH_WIRE_OVERHEAD = 24;

export interface LinkOptions {
  /** Name in stats and messages (default "link<n>"). */
  name?: string;
  /** Line rate in Gbit/s (default 100). */
  gbps?: number;
  /** One-way latency after serialization, ns (default 1000). */
  latencyNs?: number;
  /** Probabilities per frame, 0..1 (default 0). */
  loss?: number;
  reorder?: number;
  duplicate?: number;
  corrupt?: number;
  /** How long a reordered frame is held back, ns (default 5000). */
  reorderNs?: number;
  /** How much later a duplicate arrives, ns (default 0: right after the original). */
  dupDelayNs?: number;
  /** Bytes per frame on the wire beyond the frame itself (default ETH_WIRE_OVERHEAD). */
  wireOverhead?: number;
  /** Also capture this link's frames (both directions) into this writer. */
  capture?: PcapWriter;
}

export interface LinkEnd {
  card: NetEndpoint;
  port: number;
}

/** Counters of one direction of a link. */
export interface DirStats {
  /** Frames taken from the sender's TX ring onto this direction, and their bytes. */
  frames: number;
  bytes: number;
  /** Frames put into the receiver's RX ring (duplicates included). */
  delivered: number;
  lost: number;
  reordered: number;
  duplicated: number;
  corrupted: number;
  /** Frames that found the receiver's RX ring full: dropped (rxFull "drop") or made to wait (rxFull "pause"). */
  dropped_ring_full: number;
  waited_ring_full: number;
  /** Frames sent on the link while it was down, or arriving while it was down. */
  dropped_link_down: number;
  /** Frames an injected "delay" fault held back. */
  delayed: number;
}

export const DIR_STAT_NAMES: readonly (keyof DirStats)[] = [
  "frames", "bytes", "delivered", "lost", "reordered", "duplicated", "corrupted", "dropped_ring_full", "waited_ring_full",
  "dropped_link_down", "delayed",
];

export function emptyDirStats(): DirStats {
  return {
    frames: 0, bytes: 0, delivered: 0, lost: 0, reordered: 0, duplicated: 0, corrupted: 0, dropped_ring_full: 0, waited_ring_full: 0,
    dropped_link_down: 0, delayed: 0,
  };
}

const TWO_32 = 4294967296;

/** A fault for chosen frames of a link (Link.inject). */
export interface InjectedFault {
  /** drop: the frame never arrives (counted lost); corrupt: one bit flipped (counted corrupted); delay: held back delayNs (counted delayed). */
  kind: "drop" | "corrupt" | "delay";
  /** Direction: "ab" (a → b), "ba", or both (default). */
  dir?: "ab" | "ba";
  /** How many matching frames it acts on (default 1). */
  count?: number;
  /** Which frames: a predicate on the frame bytes (default: every frame). The view is valid during the call only. */
  match?: (frame: Uint8Array) => boolean;
  /** delay: how long, ns (default 10 µs). */
  delayNs?: number;
  /** corrupt: which bit of the frame (default: one drawn from the link's PRNG). */
  bit?: number;
}

/** An injected fault still armed on a direction. */
export interface ArmedFault {
  readonly fault: InjectedFault;
  left: number;
}

function rate(name: string, v: number | undefined): number {
  const r = v ?? 0;
  if (!(r >= 0 && r <= 1)) throw new RangeError(`link: ${name} must be a probability in 0..1, got ${v}`);
  return r;
}

function nonNegative(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!(x >= 0 && Number.isFinite(x))) throw new RangeError(`link: ${name} must be a finite number ≥ 0, got ${v}`);
  return x;
}

/** One direction of a link: its wire, its faults, its counters. */
export class LinkDir {
  readonly stats: DirStats = emptyDirStats();
  /** Virtual time the wire is busy until (end of the last serialization). */
  busyUntil = 0;
  /** Injected faults still armed, in the order they were injected. */
  armed: ArmedFault[] = [];
  readonly prng: Prng;
  // Thresholds as u32 draws: a fault happens when next() < threshold.
  readonly lossT: number;
  readonly corruptT: number;
  readonly reorderT: number;
  readonly dupT: number;
  readonly nsPerByte: number;

  constructor(
    readonly link: Link,
    /** 0: a → b, 1: b → a. */
    readonly dir: 0 | 1,
    readonly from: LinkEnd,
    readonly to: LinkEnd,
    /** Fabric's index of the receiving endpoint. */
    readonly toIndex: number,
    seed: number,
  ) {
    const o = link.options;
    this.prng = new Prng(seed);
    this.lossT = o.loss * TWO_32;
    this.corruptT = o.corrupt * TWO_32;
    this.reorderT = o.reorder * TWO_32;
    this.dupT = o.duplicate * TWO_32;
    this.nsPerByte = 8 / o.gbps;
  }

  get name(): string { return `${this.link.name}.${this.dir === 0 ? "ab" : "ba"}`; }
}

export type ResolvedLinkOptions = Required<Omit<LinkOptions, "capture" | "name">>;

/** A full-duplex link: two directions. Made by Fabric.connect(). */
export class Link {
  readonly options: ResolvedLinkOptions;
  readonly dirs: [LinkDir, LinkDir];

  constructor(
    readonly name: string,
    readonly index: number,
    readonly a: LinkEnd,
    readonly b: LinkEnd,
    endpointIndex: [number, number],
    opts: LinkOptions,
    fabricSeed: number,
    readonly capture: PcapWriter | undefined,
  ) {
    const gbps = opts.gbps ?? 100;
    if (!(gbps > 0 && Number.isFinite(gbps))) throw new RangeError(`link ${name}: gbps must be > 0, got ${opts.gbps}`);
    this.options = {
      gbps,
      latencyNs: nonNegative("latencyNs", opts.latencyNs, 1000),
      loss: rate("loss", opts.loss),
      reorder: rate("reorder", opts.reorder),
      duplicate: rate("duplicate", opts.duplicate),
      corrupt: rate("corrupt", opts.corrupt),
      reorderNs: nonNegative("reorderNs", opts.reorderNs, 5000),
      dupDelayNs: nonNegative("dupDelayNs", opts.dupDelayNs, 0),
      wireOverhead: nonNegative("wireOverhead", opts.wireOverhead, ETH_WIRE_OVERHEAD),
    };
    // Each direction's PRNG seed comes from the fabric seed and the link's index, so adding
    // a link does not change the faults of the others.
    const s0 = splitmix32((fabricSeed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0)[0];
    const s1 = splitmix32(s0)[0];
    this.dirs = [new LinkDir(this, 0, a, b, endpointIndex[1], s0), new LinkDir(this, 1, b, a, endpointIndex[0], s1)];
  }

  /** False while the link is down (setUp). */
  up = true;

  /** Take the link down (frames sent or arriving meanwhile are dropped, counted dropped_link_down) or up again. */
  setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    this.onChange?.(up);
  }

  /** Set by the fabric when it reports link events. */
  onChange: ((up: boolean) => void) | undefined;

  /**
   * Arm a fault for the next `count` frames (default 1) that match, on one direction or
   * both. Returns a function that disarms what is left of it.
   */
  inject(f: InjectedFault): () => void {
    const count = f.count ?? 1;
    if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`link ${this.name}: inject count must be a whole number ≥ 1, got ${f.count}`);
    if (f.kind !== "drop" && f.kind !== "corrupt" && f.kind !== "delay") throw new RangeError(`link ${this.name}: unknown fault kind "${String(f.kind)}"`);
    if (f.delayNs !== undefined && !(f.delayNs >= 0 && Number.isFinite(f.delayNs))) throw new RangeError(`link ${this.name}: delayNs must be ≥ 0`);
    const dirs = f.dir === "ab" ? [this.dirs[0]] : f.dir === "ba" ? [this.dirs[1]] : this.dirs;
    const armed = dirs.map((d) => { const a: ArmedFault = { fault: f, left: count }; d.armed.push(a); return [d, a] as const; });
    return () => { for (const [d, a] of armed) d.armed = d.armed.filter((x) => x !== a); };
  }

  /** Counters of both directions, by direction name ("ab": a → b, "ba": b → a). */
  stats(): { ab: DirStats; ba: DirStats } {
    return { ab: { ...this.dirs[0].stats }, ba: { ...this.dirs[1].stats } };
  }
}
