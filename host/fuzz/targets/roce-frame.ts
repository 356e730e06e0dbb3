// roce-frame: one RoCEv2 frame per input into a card's receive path: the per-packet
// harness, for executions per second on the frame path. The card, the frames and the
// oracles are roce-rx's (QPs in every state, every frame accounted for exactly once, the
// memory audit); only the input differs. Here it is the frame itself, the bytes that go
// into the RX slot (its length is the slot length), so running it is one copy and one
// poll, and the structure lives in the generator and the mutator:
//   - new frames come from roce-rx's message generator, built at the PSN each QP expects
//     in the baseline (every input starts there);
//   - a mutation sets one header field (Ethernet, IPv4, UDP, BTH, the extension header
//     words) to a boundary, nudged or random value, resizes the payload with the IP and
//     UDP lengths and the pad count following, or swaps the opcode; then most of the time
//     the IPv4 checksum and the ICRC are made right again, so the frame gets past them.
// The engine's byte-level havoc adds the frames no field mutation makes.
import * as M from "../../../assembly/memmap.js";
import * as W from "../../../assembly/rdma/wire.js";
import type { FuzzCard } from "../card.js";
import type { Rng } from "../rng.js";
import type { Harness, Target } from "../target.js";
import { RoceRxHarness, built, fixIcrc, ETH, IPO, UDPO, BTHO, OPCODES, ipChecksum } from "./roce-rx.js";

/** EtherTypes the receive path must refuse: IPv6 (RoCEv2 over IPv6 is not supported) and RoCEv1. */
const ETHERTYPE_IPV6 = 0x86dd, ETHERTYPE_ROCEV1 = 0x8915;

/** Header fields a mutation sets: offset from the frame start, width in bytes, boundary values. */
const FIELDS: readonly { name: string; at: number; width: 1 | 2 | 4; interesting: readonly number[] }[] = [
  { name: "ethertype", at: W.ETH_TYPE_OFF, width: 2, interesting: [W.ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ROCEV1, 0] },
  { name: "ip version/ihl", at: IPO + W.IP_VER_IHL_OFF, width: 1, interesting: [0x45, 0x46, 0x44, 0x65, 0x4f] },
  { name: "ip length", at: IPO + W.IP_TOTLEN_OFF, width: 2, interesting: [0, 19, 20, 28, 40, 44, 0xffff] },
  { name: "ip fragment", at: IPO + W.IP_FRAG_OFF, width: 2, interesting: [0, W.IP_DF, 0x2000, 0x0001, 0xffff] },
  { name: "ip protocol", at: IPO + W.IP_PROTO_OFF, width: 1, interesting: [W.IPPROTO_UDP, 6, 0, 0xff] },
  { name: "udp port", at: UDPO + W.UDP_DPORT_OFF, width: 2, interesting: [W.ROCEV2_UDP_PORT, W.ROCEV2_UDP_PORT + 1, 0, 0xffff] },
  { name: "udp length", at: UDPO + W.UDP_LEN_OFF, width: 2, interesting: [0, 7, 8, 20, 0xffff] },
  { name: "opcode", at: BTHO + W.BTH_OPCODE_OFF, width: 1, interesting: OPCODES },
  { name: "bth flags", at: BTHO + W.BTH_FLAGS_OFF, width: 1, interesting: [0, W.BTH_SE, W.BTH_MIG, 0x10, 0x20, 0x30, 0x01, 0xff] },
  { name: "p_key", at: BTHO + W.BTH_PKEY_OFF, width: 2, interesting: [W.DEFAULT_PKEY, 0x7fff, 0, 0x8001] },
  { name: "dest qp", at: BTHO + W.BTH_DQP_OFF, width: 4, interesting: [1, 0x11, 0x12, 0x13, 0x14, 0x15, 0x20, 0x30, 0xff, 0x100, 0xffffff, 0xff000011] },
  { name: "ackreq/psn", at: BTHO + W.BTH_PSN_OFF, width: 4, interesting: [0, 0x80000000, 0xffffff, 0x7fffff, 0x800000, 0x80000064, 100, 0xfffff0] },
  { name: "ext word 0", at: BTHO + W.BTH_LEN, width: 4, interesting: [0, 1, 0xffffffff, 0x80000000] },
  { name: "ext word 1", at: BTHO + W.BTH_LEN + 4, width: 4, interesting: [0, 0x3fff, 0x4000, 0xfffff000, 0xffffffff] },
  { name: "ext word 2", at: BTHO + W.BTH_LEN + 8, width: 4, interesting: [0, 1, 0x100, 0xffffffff] },
  { name: "ext word 3", at: BTHO + W.BTH_LEN + 12, width: 4, interesting: [0, 1, 256, 4096, 0x4000, 0x4001, 0x80000000, 0xffffffff] },
];

class RoceFrameHarness implements Harness {
  readonly unit = "edges";
  /** Frames up to a slot and a little over (the oversize check). */
  readonly maxLen = M.NET_FRAME_MAX + 64;
  /** PSN each QP's responder / requester expects in the baseline. */
  private readonly rqPsn = new Uint32Array(M.MAX_QPS);
  private readonly sqPsn = new Uint32Array(M.MAX_QPS);
  /** RX slot the generator and the fixups build in (runs use the one before it). */
  private readonly scratch: number;

  private constructor(private readonly rr: RoceRxHarness) {
    for (let q = 0; q < M.MAX_QPS; q++) { this.rqPsn[q] = rr.expectedPsn(q, false); this.sqPsn[q] = rr.expectedPsn(q, true); }
    const next = (rr.rx.base.rxProd + 1) % M.NET_RING_ENTRIES;
    this.scratch = M.NET_RX_SLOTS + next * M.NET_SLOT_SIZE + M.NET_SLOT_HDR;
  }

  static async create(module?: WebAssembly.Module): Promise<RoceFrameHarness> {
    return new RoceFrameHarness(await RoceRxHarness.create(module));
  }

  get fc(): FuzzCard { return this.rr.fc; }
  reset(): void { this.rr.reset(); }
  get total(): number { return this.rr.total; }
  get mapSize(): number { return this.rr.mapSize; }
  get auditEvery(): number | undefined { return this.rr.auditEvery; }

  // ---- generation ----
  generate(rng: Rng): Uint8Array {
    const frames = this.rr.message(rng).filter((o) => this.rr.codec.specs[o.code]!.name === "frame");
    const v = rng.pick(frames).vals;
    const { qpn, resp } = this.rr.target(v);
    const q = qpn % M.MAX_QPS;
    const fc = this.rr.fc, f = this.scratch;
    const len = Math.min(this.maxLen, this.rr.build(f, v, resp ? this.sqPsn[q]! : this.rqPsn[q]!));
    fc.hostWrote(f, Math.max(len, built.wrote));
    return fc.u8.slice(f, f + len);
  }

  mutate(input: Uint8Array, rng: Rng, steps = 1): Uint8Array {
    let b: Uint8Array = input.slice();
    for (let k = 0; k < steps; k++) {
      const r = rng.below(16);
      if (r < 1 || b.length < BTHO + W.BTH_LEN) { b = this.generate(rng); continue; } // the engine generates too
      if (r < 11) this.setField(b, rng);
      else if (r < 14) b = this.resize(b, rng);
      else b[BTHO] = rng.pick(OPCODES); // the lengths of one opcode, the header of another
      if (rng.chance(0.85)) this.fixup(b);
    }
    return b;
  }

  private setField(b: Uint8Array, rng: Rng): void {
    const f = rng.pick(FIELDS);
    if (f.at + f.width > b.length) return;
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    const max = 2 ** (8 * f.width);
    const old = f.width === 1 ? b[f.at]! : f.width === 2 ? dv.getUint16(f.at) : dv.getUint32(f.at);
    const r = rng.below(4);
    const v = r === 0 ? rng.pick(f.interesting) : r === 1 ? old + (rng.chance(0.5) ? 1 : -1) * (1 + rng.small(64)) : r === 2 ? rng.next() : old ^ (1 << rng.below(8 * f.width));
    const val = ((v % max) + max) % max;
    if (f.width === 1) b[f.at] = val; else if (f.width === 2) dv.setUint16(f.at, val); else dv.setUint32(f.at, val >>> 0);
  }

  /** Grow or shrink the payload before the ICRC; IP and UDP lengths and the pad count follow. */
  private resize(b: Uint8Array, rng: Rng): Uint8Array {
    const delta = rng.pick([-4, -1, 1, 3, 4, rng.small(1024), -rng.small(1024)]);
    const end = Math.max(BTHO + W.BTH_LEN, b.length - W.ICRC_LEN);
    const n = Math.max(BTHO + W.BTH_LEN + W.ICRC_LEN, Math.min(this.maxLen, b.length + delta));
    const out = new Uint8Array(n);
    const keep = Math.min(end, n - W.ICRC_LEN);
    out.set(b.subarray(0, keep));
    for (let i = keep; i < n - W.ICRC_LEN; i++) out[i] = (i * 31) & 0xff;
    const dv = new DataView(out.buffer);
    const ipLen = n - ETH;
    dv.setUint16(IPO + W.IP_TOTLEN_OFF, ipLen);
    dv.setUint16(UDPO + W.UDP_LEN_OFF, ipLen - W.IP_HDR_LEN);
    const pad = (4 - ((ipLen - W.IP_HDR_LEN - W.UDP_HDR_LEN - W.ICRC_LEN) & 3)) & 3;
    out[BTHO + W.BTH_FLAGS_OFF] = (out[BTHO + W.BTH_FLAGS_OFF]! & ~W.BTH_PAD_MASK) | (pad << W.BTH_PAD_SHIFT);
    return out;
  }

  /** The IPv4 checksum and the ICRC made right for the frame's (possibly mutated) headers. */
  private fixup(b: Uint8Array): void {
    const fc = this.rr.fc, f = this.scratch, dv = fc.card.dv;
    const n = Math.min(b.length, M.NET_FRAME_MAX);
    fc.u8.set(b.subarray(0, n), f);
    fc.hostWrote(f, n);
    if (n < UDPO) return;
    dv.setUint16(f + IPO + W.IP_CSUM_OFF, ipChecksum(fc.u8, f + IPO));
    fixIcrc(fc, f, n);
    b.set(fc.u8.subarray(f, f + n)); // the checksum and the ICRC, as the card has them now
  }

  // ---- running ----
  run(input: Uint8Array): void {
    const rr = this.rr, rx = rr.rx, fc = rr.fc, fw = fc.card.fw;
    rr.reset();
    rx.begin();
    const n = Math.min(input.length, M.NET_FRAME_MAX);
    rx.push((f) => { fc.u8.set(input.subarray(0, n), f); return input.length; }, () => n);
    for (let i = 0; i < 8 && rx.pending() !== 0; i++) fw.rdmaRcPoll(1024, 0);
    rx.check();
    fc.auditCanaries();
  }

  explain(input: Uint8Array): string[] {
    const dv = new DataView(input.buffer, input.byteOffset, input.length);
    const g = (at: number, w: 1 | 2 | 4) => (at + w > input.length ? "-" : "0x" + (w === 1 ? input[at]! : w === 2 ? dv.getUint16(at) : dv.getUint32(at)).toString(16));
    return [`${input.length} bytes`, ...FIELDS.map((f) => `${f.name.padEnd(15)} ${g(f.at, f.width)}`)];
  }

  collect(seen: Uint8Array): number { return this.rr.collect(seen); }
  byFile(seen: Uint8Array, perFunction?: boolean): Record<string, [number, number]> { return this.rr.byFile(seen, perFunction); }
  fullAudit(): void { this.rr.fullAudit(); }
  restoreAll(): void { this.rr.restoreAll(); }
}

export const roceFrameTarget: Target = {
  name: "roce-frame",
  about: "one RoCEv2 frame per input into the receive path (per-packet harness on roce-rx's card and oracles): header fields, lengths, ICRC",
  create: (opts) => RoceFrameHarness.create(opts?.module),
};
