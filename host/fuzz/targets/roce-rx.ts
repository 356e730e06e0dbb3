// roce-rx: RoCEv2 frames from the network into a card's receive path (rdmaRcPoll: the RX
// frame ring, rdma/rx.ts framing/ICRC/opcode/length checks, then per QP the transport,
// Q_Key and sequence checks, the RC responder for an engine-driven QP and the CM on QP1).
// The baseline card has QPs in every state: RC QPs in RTS (one driven by the RC engine,
// with a memory region and posted receives; one checked by seq.ts only, at a 256-byte
// MTU), an RC QP in RTR, one in INIT, one in ERR, a UD QP in RTS, QP1 (CM, a listener on
// 4420) and QPs never configured (RESET).
//
// An input is a program of frames built from the wire format (Ethernet / IPv4 / UDP 4791 /
// BTH / the extension headers the firmware's opcode table names for the opcode / payload /
// pad / ICRC computed by the firmware's rdmaIcrc), each with at most one deliberate damage
// (pad count, TVer, IP or UDP length, dest QP, P_Key, EtherType, IP version, fragment bits,
// protocol, UDP port, slot length, ICRC, a byte before or after the ICRC, IP checksum,
// truncation), raw frames, receive WQEs posted, polls and virtual time. PSNs are relative
// to what the QP expects, so frames reach the sequence checks.
//
// Executions: the engine counts one per input; one input is a batch of up to 96 frames
// (about 20 on average), so frames/s is about 20 × exec/s. Target `roce-frame`
// (roce-frame.ts) is this card and these oracles with one raw frame per input.
//
// Oracles: no trap; the memory audit (canary guest bytes outside the memory region,
// firmware statics, CRC tables, every other byte of card memory at the full audit); after
// the final poll the RX ring consumer equals its producer; every frame pushed has exactly
// one result log entry (frame numbers and ring slots consecutive), accepted iff its reason
// is 0; rdma_rx_frames grew by the frames pushed, rdma_rx_accepted by the accepted entries,
// and each wire-layer drop counter by exactly its entries (others at least); every QP state
// is a QpState; the TX ring holds at most its entries.
import * as M from "../../../assembly/memmap.js";
import * as W from "../../../assembly/rdma/wire.js";
import * as R from "../../../assembly/rdma/rcdefs.js";
import { Counter } from "../../../assembly/counters.js";
import { FuzzCard, Finding, range, tracked, type Range } from "../card.js";
import { ProgramCodec, type Op, type OpSpec } from "../program.js";
import type { Rng } from "../rng.js";
import type { Harness, Target } from "../target.js";

// ---- the frame builder (shared with rdma-cm.ts) ----

export const ETH = W.ETH_HDR_LEN, IPO = W.ETH_HDR_LEN, UDPO = IPO + W.IP_HDR_LEN, BTHO = UDPO + W.UDP_HDR_LEN;
/** Our card's addresses, and the peer's. */
export const LOCAL = { ip: [10, 0, 0, 2], mac: [0x02, 0, 0, 0, 0, 0x02] };
export const PEER = { ip: [10, 0, 0, 1], mac: [0x02, 0, 0, 0, 0, 0x01] };
export const ipWire = (ip: number[]) => (ip[0]! | (ip[1]! << 8) | (ip[2]! << 16) | (ip[3]! << 24)) >>> 0;
export const macHi = (m: number[]) => (m[0]! << 8) | m[1]!;
export const macLo = (m: number[]) => ((m[2]! << 24) | (m[3]! << 16) | (m[4]! << 8) | m[5]!) >>> 0;

/** Every opcode of the firmware's table (wire.ts Op), plus a few it must refuse (UC, RD, reserved). */
export const OPCODES: readonly number[] = [
  ...Object.values(W.Op).filter((v): v is number => typeof v === "number"),
  0x15, 0x18, 0x1f, 0x20, 0x24, 0x40, 0x66, 0x80, 0xff,
];

/** Damage applied to one frame (kinds below DMG_AFTER before the ICRC is computed, so the frame still passes it). */
export enum Dmg {
  NONE = 0, PAD, TVER, IP_LEN, UDP_LEN, DQP, PKEY, ETHERTYPE, IP_VIHL, IP_FRAG, IP_PROTO, UDP_PORT, BYTE, OPCODE_AFTER_LEN,
  DMG_AFTER, // ---- after the ICRC ----
  ICRC, BYTE_AFTER, IP_CSUM, SLOT_LEN, NO_ICRC, COUNT,
}

export function ipChecksum(u8: Uint8Array, ip: number): number {
  let s = 0;
  for (let i = 0; i < 20; i += 2) if (i !== 10) s += (u8[ip + i]! << 8) | u8[ip + i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Smallest IPv4 total length of a RoCEv2 packet: IP, UDP, BTH and ICRC. */
const MIN_IP_LEN = W.IP_HDR_LEN + W.UDP_HDR_LEN + W.BTH_LEN + W.ICRC_LEN;

/**
 * Write the ICRC (the firmware's rdmaIcrc) of the frame at card offset f for the IP total
 * length in its header, if that length holds the headers and the frame fits in `room`
 * bytes; returns whether it did.
 */
export function fixIcrc(fc: FuzzCard, f: number, room: number): boolean {
  const dv = fc.card.dv, ipLen = dv.getUint16(f + IPO + W.IP_TOTLEN_OFF);
  if (ipLen < MIN_IP_LEN || ETH + ipLen > room) return false;
  dv.setUint32(f + ETH + ipLen - W.ICRC_LEN, fc.card.fw.rdmaIcrc(f, ipLen) >>> 0, true);
  return true;
}

/** A raw frame op's bytes at card offset f, its ICRC made right when `fix` (the op's flag); returns the slot length. */
export function rawFrame(fc: FuzzCard, f: number, blob: Uint8Array, fix: boolean): number {
  fc.u8.set(blob, f);
  if (fix) fixIcrc(fc, f, blob.length);
  return blob.length;
}

export interface FrameSpec {
  opcode: number; dqp: number; psn: number; ackreq: boolean; seM: number; plen: number;
  /** extension header fields */
  va: number; key: number; dlen: number; qkey: number; srcQp: number;
  dmg: number; dv: number;
  /** High 32 bits of the RETH VA (default 1: roce-rx's VA0). */
  vaHi?: number;
}

/**
 * Build one RoCEv2 frame into card memory at `f` (the frame's first byte inside an RX slot):
 * headers from the firmware's opcode table entry for the opcode, payload from `fill`, pad,
 * ICRC from the firmware (rdmaIcrc) unless damaged. Returns the slot length to publish.
 */
export function buildFrame(fc: FuzzCard, f: number, s: FrameSpec, fill: Uint8Array): number {
  built = buildInner(fc, f, s, fill);
  return built.len;
}
/** Bytes the last buildFrame wrote from the frame start (the slot bytes to restore). */
export let built = { len: 0, wrote: 0 };
function buildInner(fc: FuzzCard, f: number, s: FrameSpec, fill: Uint8Array): { len: number; wrote: number } {
  const u8 = fc.u8, dv = fc.card.dv, fw = fc.card.fw;
  const e = fw.rdmaOpcodeEntry(s.opcode & 0xff);
  const valid = u8[e + W.OPT_VALID] !== 0;
  const hdr = valid ? u8[e + W.OPT_HDRLEN]! : W.BTH_LEN;
  const plen = s.plen;
  const pad = (4 - (plen & 3)) & 3;
  let ipLen = W.IP_HDR_LEN + W.UDP_HDR_LEN + hdr + plen + pad + W.ICRC_LEN;
  if (ETH + ipLen > M.NET_FRAME_MAX) ipLen = M.NET_FRAME_MAX - ETH;
  const total = ETH + ipLen;
  u8.set(LOCAL.mac, f); u8.set(PEER.mac, f + 6);
  dv.setUint16(f + W.ETH_TYPE_OFF, W.ETHERTYPE_IPV4);
  const ip = f + IPO;
  u8[ip] = W.IP_VER_IHL; u8[ip + 1] = 0;
  dv.setUint16(ip + W.IP_TOTLEN_OFF, ipLen); dv.setUint16(ip + W.IP_ID_OFF, 0);
  dv.setUint16(ip + W.IP_FRAG_OFF, W.IP_DF); u8[ip + W.IP_TTL_OFF] = 64; u8[ip + W.IP_PROTO_OFF] = W.IPPROTO_UDP;
  u8.set(PEER.ip, ip + W.IP_SRC_OFF); u8.set(LOCAL.ip, ip + W.IP_DST_OFF);
  const udp = f + UDPO;
  dv.setUint16(udp, W.ROCEV2_SPORT_BASE | (s.srcQp & 0x3fff)); dv.setUint16(udp + W.UDP_DPORT_OFF, W.ROCEV2_UDP_PORT);
  dv.setUint16(udp + W.UDP_LEN_OFF, ipLen - W.IP_HDR_LEN); dv.setUint16(udp + W.UDP_CSUM_OFF, 0);
  const b = f + BTHO;
  u8[b] = s.opcode; u8[b + 1] = (s.seM & 0xc0) | (pad << W.BTH_PAD_SHIFT);
  dv.setUint16(b + W.BTH_PKEY_OFF, W.DEFAULT_PKEY);
  dv.setUint32(b + W.BTH_DQP_OFF, s.dqp & W.QPN_MASK);
  dv.setUint32(b + W.BTH_PSN_OFF, ((s.ackreq ? W.BTH_ACKREQ : 0) | (s.psn & W.PSN_MASK)) >>> 0);
  if (hdr > W.BTH_LEN) u8.fill(0, b + W.BTH_LEN, b + hdr);
  if (valid) {
    const at = (o: number) => (u8[e + o] ? b + u8[e + o]! : 0);
    let x;
    if ((x = at(W.OPT_RETH))) { dv.setUint32(x, s.vaHi ?? 0x1); dv.setUint32(x + 4, s.va); dv.setUint32(x + W.RETH_RKEY_OFF, s.key); dv.setUint32(x + W.RETH_DMALEN_OFF, s.dlen); }
    if ((x = at(W.OPT_AETH))) dv.setUint32(x, s.va);
    if ((x = at(W.OPT_IMMDT))) dv.setUint32(x, s.key);
    if ((x = at(W.OPT_IETH))) dv.setUint32(x, s.key);
    if ((x = at(W.OPT_DETH))) { dv.setUint32(x + W.DETH_QKEY_OFF, s.qkey); dv.setUint32(x + W.DETH_SRCQP_OFF, s.srcQp & W.QPN_MASK); }
    if ((x = at(W.OPT_ATOMICETH))) { dv.setUint32(x, 0x1); dv.setUint32(x + 4, s.va); dv.setUint32(x + 8, s.key); dv.setUint32(x + 12, 0); dv.setUint32(x + 16, s.dlen); }
    if ((x = at(W.OPT_ATOMICACKETH))) { dv.setUint32(x, 0); dv.setUint32(x + 4, s.dlen); }
  }
  const pl = b + hdr;
  const room = f + total - W.ICRC_LEN - pl;
  if (room > 0) {
    const n = Math.min(room, plen);
    u8.set(fill.subarray(0, n), pl);
    if (room > n) u8.fill(0, pl + n, pl + room);
  }
  // damage that the ICRC still covers
  const d = s.dmg % Dmg.COUNT, v = s.dv;
  switch (d) {
    case Dmg.PAD: u8[b + 1] = (u8[b + 1]! & ~W.BTH_PAD_MASK) | ((v & 3) << W.BTH_PAD_SHIFT); break;
    case Dmg.TVER: u8[b + 1] = (u8[b + 1]! & ~W.BTH_TVER_MASK) | (v & 15 || 1); break;
    case Dmg.IP_LEN: dv.setUint16(ip + W.IP_TOTLEN_OFF, (ipLen + ((v << 16) >> 16)) & 0xffff); break;
    case Dmg.UDP_LEN: dv.setUint16(udp + W.UDP_LEN_OFF, (ipLen - 20 + ((v << 16) >> 16)) & 0xffff); break;
    case Dmg.DQP: dv.setUint32(b + W.BTH_DQP_OFF, (dv.getUint32(b + W.BTH_DQP_OFF) & 0xff000000) | (v & W.QPN_MASK)); break;
    case Dmg.PKEY: dv.setUint16(b + W.BTH_PKEY_OFF, v & 0xffff); break;
    case Dmg.ETHERTYPE: dv.setUint16(f + W.ETH_TYPE_OFF, v & 0xffff); break;
    case Dmg.IP_VIHL: u8[ip] = v & 0xff; break;
    case Dmg.IP_FRAG: dv.setUint16(ip + W.IP_FRAG_OFF, v & 0xffff); break;
    case Dmg.IP_PROTO: u8[ip + W.IP_PROTO_OFF] = v & 0xff; break;
    case Dmg.UDP_PORT: dv.setUint16(udp + W.UDP_DPORT_OFF, v & 0xffff); break;
    case Dmg.BYTE: u8[f + ((v >>> 8) % total)] = v & 0xff; break;
    case Dmg.OPCODE_AFTER_LEN: u8[b] = v & 0xff; break; // lengths of one opcode, header of another
  }
  dv.setUint16(ip + W.IP_CSUM_OFF, ipChecksum(u8, ip));
  const icrcAt = f + ETH + (dv.getUint16(ip + W.IP_TOTLEN_OFF)) - W.ICRC_LEN;
  let len = total;
  if (icrcAt + 4 <= f + M.NET_FRAME_MAX && icrcAt >= f) {
    if (icrcAt + 4 > f + len) len = icrcAt + 4 - f;
    const c = d === Dmg.NO_ICRC ? 0 : fw.rdmaIcrc(f, dv.getUint16(ip + W.IP_TOTLEN_OFF)) >>> 0;
    dv.setUint32(icrcAt, d === Dmg.ICRC ? (c ^ (v | 1)) >>> 0 : c, true);
  }
  switch (d) {
    case Dmg.BYTE_AFTER: u8[f + ((v >>> 8) % len)] ^= (v & 0xff) || 1; break;
    case Dmg.IP_CSUM: dv.setUint16(ip + W.IP_CSUM_OFF, dv.getUint16(ip + W.IP_CSUM_OFF) ^ ((v & 0xffff) || 1)); break;
    case Dmg.SLOT_LEN: len = v & 1 ? Math.max(0, len - 1 - ((v >>> 1) % len)) : Math.min(M.NET_FRAME_MAX + 64, len + 1 + ((v >>> 1) & 0xfff)); break;
  }
  return { len, wrote: Math.min(M.NET_FRAME_MAX, Math.max(total, icrcAt + 4 - f)) };
}

// ---- the frame rings and the receive accounting (shared with rdma-cm.ts) ----

/**
 * The RX ring as the fuzzer fills it, the slots and log entries an input touched put back
 * cheaply, and the oracle that every frame pushed is accounted for exactly once.
 */
export class RxRing {
  readonly base: { rxProd: number; txProd: number; logProd: number; frames: number };
  readonly slotBytes = new Uint32Array(M.NET_RING_ENTRIES);
  private readonly before = new Float64Array(M.COUNTERS_MAX);
  private readonly logCount = new Uint32Array(M.COUNTERS_MAX);
  pushed = 0;
  constructor(readonly fc: FuzzCard) {
    const dv = fc.card.dv;
    this.base = {
      rxProd: dv.getUint32(M.NET_RX_CTRL, true), txProd: dv.getUint32(M.NET_TX_CTRL, true),
      logProd: dv.getUint32(M.RDMA_CTRL + W.RC_LOG_PROD, true), frames: dv.getUint32(M.RDMA_CTRL + W.RC_RX_FRAMES, true),
    };
  }

  /** Back to the baseline: touched RX/TX slots and log entries, then the card's writable ranges. */
  restore(): void {
    const fc = this.fc, b = this.base, u8 = fc.u8, dv = fc.card.dv;
    const base = (fc as unknown as { baseline: Uint8Array }).baseline;
    const rxProd = dv.getUint32(M.NET_RX_CTRL, true);
    for (let i = b.rxProd, k = 0; i !== rxProd && k < M.NET_RING_ENTRIES; i = (i + 1) >>> 0, k++) {
      const s = M.NET_RX_SLOTS + (i % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
      const n = M.NET_SLOT_HDR + this.slotBytes[i % M.NET_RING_ENTRIES]!;
      u8.set(base.subarray(s, s + n), s);
      this.slotBytes[i % M.NET_RING_ENTRIES] = 0;
    }
    const txProd = fc.tracking ? b.txProd : dv.getUint32(M.NET_TX_CTRL, true); // the firmware's frames: in the dirty pages when tracked
    for (let i = b.txProd, k = 0; i !== txProd && k < M.NET_RING_ENTRIES; i = (i + 1) >>> 0, k++) {
      const s = M.NET_TX_SLOTS + (i % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
      const n = M.NET_SLOT_HDR + Math.min(M.NET_FRAME_MAX, dv.getUint32(s + M.NET_SLOT_LEN_OFF, true));
      u8.set(base.subarray(s, s + n), s);
    }
    const logProd = dv.getUint32(M.RDMA_CTRL + W.RC_LOG_PROD, true);
    for (let i = b.logProd, k = 0; i !== logProd && k < M.RXLOG_ENTRIES; i = (i + 1) >>> 0, k++) {
      const l = M.RXLOG_BASE + (i % M.RXLOG_ENTRIES) * M.RXLOG_ENTRY_SIZE;
      u8.set(base.subarray(l, l + M.RXLOG_ENTRY_SIZE), l);
    }
    fc.restore();
  }

  /** Start of an input: counters the accounting compares against. */
  begin(): void {
    this.pushed = 0;
    for (const c of [Counter.rdma_rx_frames, Counter.rdma_rx_accepted, ...RX_REASONS]) this.before[c] = this.fc.counter(c);
  }

  /** One frame into the next RX slot (`build` writes it at the frame address, returns the slot length). */
  push(build: (f: number) => number, wrote?: () => number): void {
    const dv = this.fc.card.dv;
    const prod = dv.getUint32(M.NET_RX_CTRL, true);
    if (((prod - dv.getUint32(M.NET_RX_CTRL + 4, true)) >>> 0) >= M.NET_RING_ENTRIES) return;
    const s = M.NET_RX_SLOTS + (prod % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
    const len = build(s + M.NET_SLOT_HDR);
    dv.setUint32(s + M.NET_SLOT_LEN_OFF, len, true);
    dv.setUint32(s + M.NET_SLOT_PORT_OFF, 0, true);
    this.slotBytes[prod % M.NET_RING_ENTRIES] = Math.min(M.NET_FRAME_MAX, Math.max(len, wrote ? wrote() : 0));
    dv.setUint32(M.NET_RX_CTRL, (prod + 1) >>> 0, true);
    this.pushed++;
  }

  pending(): number {
    const dv = this.fc.card.dv;
    return (dv.getUint32(M.NET_RX_CTRL, true) - dv.getUint32(M.NET_RX_CTRL + 4, true)) >>> 0;
  }

  /** The oracle: ring drained, one log entry per frame, counters balance, QP states valid. */
  check(): void {
    const fc = this.fc, dv = fc.card.dv, fw = fc.card.fw, b = this.base, pushed = this.pushed;
    const rxProd = dv.getUint32(M.NET_RX_CTRL, true), rxCons = dv.getUint32(M.NET_RX_CTRL + 4, true);
    if (rxProd !== rxCons) throw new Finding("invariant", `RX ring consumer ${rxCons} ≠ producer ${rxProd} after the final polls`);
    const logProd = dv.getUint32(M.RDMA_CTRL + W.RC_LOG_PROD, true);
    const entries = (logProd - b.logProd) >>> 0;
    if (entries !== pushed) throw new Finding("invariant", `${pushed} frames pushed, ${entries} result log entries`);
    const frames = dv.getUint32(M.RDMA_CTRL + W.RC_RX_FRAMES, true);
    if (((frames - b.frames) >>> 0) !== pushed) throw new Finding("invariant", `${pushed} frames pushed, RC_RX_FRAMES grew by ${(frames - b.frames) >>> 0}`);
    const lc = this.logCount, reasons: number[] = [];
    let accepted = 0;
    for (let k = 0; k < entries; k++) {
      const l = M.RXLOG_BASE + ((b.logProd + k) % M.RXLOG_ENTRIES) * M.RXLOG_ENTRY_SIZE;
      const reason = dv.getUint32(l + W.RXL_REASON, true), flags = dv.getUint8(l + W.RXL_FLAGS);
      if (dv.getUint32(l + W.RXL_FRAME, true) !== b.frames + k + 1) throw new Finding("invariant", `log entry ${k}: frame number ${dv.getUint32(l + W.RXL_FRAME, true)}, expected ${b.frames + k + 1}`);
      if (dv.getUint32(l + W.RXL_SLOT, true) !== ((b.rxProd + k) >>> 0)) throw new Finding("invariant", `log entry ${k}: slot ${dv.getUint32(l + W.RXL_SLOT, true)}, expected ${b.rxProd + k}`);
      if (((flags & W.RXF_ACCEPTED) !== 0) !== (reason === 0)) throw new Finding("invariant", `log entry ${k}: accepted flag ${flags & W.RXF_ACCEPTED} with reason ${Counter[reason] ?? reason}`);
      if (reason >= M.COUNTERS_MAX) throw new Finding("invariant", `log entry ${k}: reason ${reason} is no counter`);
      if (reason === 0) accepted++;
      else if (lc[reason]!++ === 0) reasons.push(reason);
    }
    const delta = (c: number) => fc.counter(c) - this.before[c]!;
    if (delta(Counter.rdma_rx_frames) !== pushed) throw new Finding("invariant", `${pushed} frames pushed, rdma_rx_frames grew by ${delta(Counter.rdma_rx_frames)}`);
    if (delta(Counter.rdma_rx_accepted) !== accepted) throw new Finding("invariant", `${accepted} frames accepted in the log, rdma_rx_accepted grew by ${delta(Counter.rdma_rx_accepted)}`);
    try {
      for (const c of RX_REASONS) if (delta(c) !== lc[c]) throw new Finding("invariant", `${lc[c]} frames dropped for ${Counter[c]} in the log, the counter grew by ${delta(c)}`);
      for (const r of reasons) if (fc.counter(r) < lc[r]!) throw new Finding("invariant", `${lc[r]} frames dropped for ${Counter[r] ?? r}, counter only ${fc.counter(r)}`);
    } finally {
      for (const r of reasons) lc[r] = 0;
    }
    // rdma/qp.ts QP_STATE, what rdmaQpState reads: one word per QP entry
    const u32 = fc.u32, step = (fw.rdmaQpAddr(1) - fw.rdmaQpAddr(0)) >>> 2, end = (fw.rdmaQpAddr(0) >>> 2) + QP_STATE_WORD + M.MAX_QPS * step;
    let bad = -1;
    for (let i = end - M.MAX_QPS * step; i < end; i += step) if (u32[i]! > 4) { bad = i; break; }
    if (bad >= 0) throw new Finding("invariant", `QP ${(bad - (end - M.MAX_QPS * step)) / step} in state ${u32[bad]}, no QpState`);
    const txUsed = (dv.getUint32(M.NET_TX_CTRL, true) - dv.getUint32(M.NET_TX_CTRL + 4, true)) >>> 0;
    if (txUsed > M.NET_RING_ENTRIES) throw new Finding("invariant", `TX ring holds ${txUsed} frames (> ${M.NET_RING_ENTRIES})`);
  }
}

// ---- the target ----

const RAM = 0x8000;
/** The CRC SIMD kernel spills its lane registers here (assembly/crc.ts LANE_TMP): scratch, not tables. */
export const CRC_LANE_TMP = M.CRC_AUX + 0x1f00;
/** Bytes of guest RAM the memory region covers (the responder may write there). */
const MR_BYTES = 0x4000;
export const VA0 = 0x1_0000_0000;
const ENGINE_QP = 0x11, SEQ_QP = 0x12, RTR_QP = 0x13, INIT_QP = 0x14, ERR_QP = 0x15, UD_QP = 0x20, RESET_QP = 0x30;
const UD_QKEY = 0x11223344;
const QP_STATE_WORD = 0, QP_RQ_EPSN = 16, QP_SQ_UNA = 40; // rdma/qp.ts QP_STATE (a word), QP_RQ + SEQ_EPSN, QP_SQ_UNA (AssemblyScript; tsc cannot read it)
/** QPs a frame's `qp` field picks from (a larger value is the QP number itself). */
const QPS = [ENGINE_QP, ENGINE_QP, SEQ_QP, SEQ_QP, RTR_QP, INIT_QP, ERR_QP, UD_QP, UD_QP, W.QP1, RESET_QP];

/** Counters only the receive path's checks bump: each equals its result-log entries exactly. */
export const RX_REASONS: readonly number[] = [
  Counter.err_rdma_runt, Counter.err_rdma_oversized, Counter.err_rdma_bad_ethertype, Counter.err_rdma_bad_ip_version, Counter.err_rdma_bad_ihl,
  Counter.err_rdma_bad_ip_checksum, Counter.err_rdma_bad_ip_length, Counter.err_rdma_ip_fragment, Counter.err_rdma_not_udp, Counter.err_rdma_bad_udp_port,
  Counter.err_rdma_bad_udp_length, Counter.err_rdma_bad_icrc, Counter.err_rdma_bad_tver, Counter.err_rdma_unknown_opcode, Counter.err_rdma_bad_pad,
  Counter.err_rdma_bad_length, Counter.err_rdma_wrong_transport, Counter.err_rdma_bad_qkey,
];

const FRAME_FIELDS = [
  { name: "opcode", width: 1, interesting: OPCODES },
  { name: "qp", width: 1, interesting: [0, 2, 7, 9, 10, 0x40, 0xff] },
  { name: "psn", width: 2, interesting: [0, 1, 0xffff, 0x8000, 0x7fff, 2, 0xfffe] }, // signed offset from the expected PSN
  { name: "flags", width: 1, interesting: [0, 0x80, 0x40, 0xc0, 1, 0x81] }, // SE [7], M [6], AckReq [0]
  { name: "plen", width: 2, interesting: [0, 1, 3, 4, 255, 256, 257, 1024, 1023, 4096, 4097, 4540, 0xffff] },
  { name: "dmg", width: 1, interesting: [0, 0, 0, Dmg.PAD, Dmg.ICRC, Dmg.IP_LEN, Dmg.SLOT_LEN, Dmg.OPCODE_AFTER_LEN, Dmg.BYTE] },
  { name: "dv", width: 4, interesting: [0, 1, 2, 3, 4, 0xffff, 0xfffc, 0x10000, 0xffffffff] },
  { name: "va", width: 4, interesting: [0, 1, MR_BYTES - 1, MR_BYTES, MR_BYTES - 4096, 0xfffff000, 0xffffffff, 0x60000001, 0x20000000] },
  { name: "key", width: 4, interesting: [0, 1, 0xffffffff, 0x100, 0x200] }, // 0: the MR's key / the QP's Q_Key
  { name: "dlen", width: 4, interesting: [0, 1, 256, 1024, 4096, MR_BYTES, MR_BYTES + 1, 0x80000000, 0xffffffff] }, // 0: the payload length
] as const;

const OPS: OpSpec[] = [
  { name: "frame", fields: FRAME_FIELDS },
  { name: "raw", fields: [{ name: "fixIcrc", width: 1 }], blob: true },
  { name: "poll", fields: [{ name: "budget", width: 1, interesting: [0, 1, 255] }] },
  { name: "recv", fields: [{ name: "n", width: 1, interesting: [0, 1, 64, 255] }, { name: "len", width: 2, interesting: [0, 1, 4096, MR_BYTES, 0xffff] }] },
  { name: "time", fields: [{ name: "us", width: 2, interesting: [1, 100, 0xffff] }] },
];

export class RoceRxHarness implements Harness {
  readonly codec = new ProgramCodec(OPS, 1);
  readonly unit = "edges";
  private readonly fill: Uint8Array;
  private key = 0;
  rx!: RxRing;

  constructor(readonly fc: FuzzCard) {
    this.fill = new Uint8Array(8192);
    let x = 0x12345;
    for (let i = 0; i < this.fill.length; i++) { x = (x * 1103515245 + 12345) >>> 0; this.fill[i] = x >>> 24; }
  }

  get total(): number { return this.fc.edgesTotal; }
  /**
   * Only the firmware writes card memory, and the dirty-page audit sees every page it
   * wrote: the full audit (about 6 ms for 62 MiB) is a safety net, run 8 times less often.
   */
  get auditEvery(): number | undefined { return this.fc.tracking ? 1 << 14 : undefined; }
  get mapSize(): number { return M.FUZZ_COV_SIZE; }

  static async create(module?: WebAssembly.Module): Promise<RoceRxHarness> {
    const fc = await FuzzCard.create({ guests: [{ ramBytes: RAM }], disks: [] }, module);
    const card = fc.card, fw = card.fw, dv = card.dv;
    const ok = (v: number, what: string) => { if (v !== 0) throw new Error(`roce-rx baseline: ${what} (${v})`); };
    ok(fw.rdmaCmInit(ipWire(LOCAL.ip), macHi(LOCAL.mac), macLo(LOCAL.mac)), "CM init");
    if (fw.rdmaCmListen(W.ROCEV2_UDP_PORT === 4791 ? 4420 : 0) === 0xffffffff) throw new Error("roce-rx baseline: listen");
    // RC QPs (IBTA §10.3.1): RESET → INIT → RTR → RTS
    const rc = (qpn: number, to: number, mtu: number, rpsn: number, spsn: number) => {
      ok(fw.rdmaQpModify(qpn, 1, W.Transport.RC, 0, 0), `QP ${qpn} INIT`);
      if (to >= 2) ok(fw.rdmaQpModify(qpn, 2, mtu, 0x99, rpsn), `QP ${qpn} RTR`);
      if (to >= 3) ok(fw.rdmaQpModify(qpn, 3, 7, 7, spsn), `QP ${qpn} RTS`);
    };
    rc(ENGINE_QP, 3, 1024, 100, 5000);
    rc(SEQ_QP, 3, 256, 0xfffff0, 7); // expected PSN near the 24-bit wrap
    rc(RTR_QP, 2, 4096, 0, 0);
    rc(INIT_QP, 1, 0, 0, 0);
    rc(ERR_QP, 3, 1024, 0, 0); ok(fw.rdmaQpModify(ERR_QP, 4, 0, 0, 0), "QP ERR");
    ok(fw.rdmaQpModify(UD_QP, 1, W.Transport.UD, UD_QKEY, 0), "UD INIT");
    ok(fw.rdmaQpModify(UD_QP, 2, 1024, 0, 0), "UD RTR");
    ok(fw.rdmaQpModify(UD_QP, 3, 0, 0, 0), "UD RTS");
    ok(fw.rdmaRcEnable(ENGINE_QP, 20_000, 4, 1, 16), "RC enable");
    const blk = fw.rdmaRcBlock(ENGINE_QP), d = blk + R.RCC_TXD;
    card.u8.set(PEER.mac, d + W.TXD_DST_MAC); card.u8.set(LOCAL.mac, d + W.TXD_SRC_MAC);
    card.u8.set(LOCAL.ip, d + W.TXD_SRC_IP); card.u8.set(PEER.ip, d + W.TXD_DST_IP);
    dv.setUint16(d + W.TXD_SPORT, 0xc000 | ENGINE_QP, true); dv.setUint8(d + W.TXD_TTL, 64); dv.setUint16(d + W.TXD_PKEY, 0xffff, true);
    const h = new RoceRxHarness(fc);
    h.key = fw.rdmaMrRegister(0, 0, MR_BYTES, Math.floor(VA0 / 2 ** 32), VA0 >>> 0, R.MR_LOCAL_WRITE | R.MR_REMOTE_READ | R.MR_REMOTE_WRITE);
    if (h.key === 0) throw new Error("roce-rx baseline: MR");
    h.postRecv(4, 2048);
    // requests of our own in flight, so ACKs, NAKs and READ responses reach the completer
    const sq = blk - R.RCQ_CTRL + R.RCQ_SQ;
    const wrs = [[R.WrOp.SEND, 2000, 0], [R.WrOp.WRITE, 512, 0x1000], [R.WrOp.READ, 3000, 0x2000], [R.WrOp.SEND_IMM, 100, 0x3000]] as const;
    wrs.forEach(([op, len, off], i) => {
      const e = sq + i * R.SWQE_SIZE;
      card.u8.fill(0, e, e + R.SWQE_SIZE);
      dv.setBigUint64(e + R.SWQE_WRID, BigInt(100 + i), true); dv.setUint32(e + R.SWQE_OP, op, true);
      dv.setUint32(e + R.SWQE_LKEY, h.key, true); dv.setBigUint64(e + R.SWQE_LADDR, BigInt(VA0 + off), true);
      dv.setUint32(e + R.SWQE_LEN, len, true); dv.setUint32(e + R.SWQE_RKEY, 0x77, true);
      dv.setBigUint64(e + R.SWQE_RADDR, 0x5000_0000n, true); dv.setUint32(e + R.SWQE_IMM, 0xabcd, true);
    });
    if (fw.rdmaRcPostSend(ENGINE_QP, wrs.length) !== wrs.length) throw new Error("roce-rx baseline: post send");
    fw.rdmaRcPoll(0, 0); // transmitted: the TX ring holds them
    const g = card.guests[0]!;
    for (let i = MR_BYTES; i < g.size; i++) card.u8[g.base + i] = (i * 11) & 0xff;
    // the firmware alone writes these (tracked); the host writes the RX ring control and
    // slots (RxRing restores them) and receive WQEs (postRecv tells the card)
    const writable: Range[] = [
      tracked(M.COUNTERS_BASE, M.QUEUE_TABLE_BASE - M.COUNTERS_BASE, "counters, globals, tables"),
      tracked(M.NET_TX_CTRL, 64, "TX ring control"), { ...range(M.NET_TX_SLOTS, M.NET_RING_ENTRIES * M.NET_SLOT_SIZE, "TX ring slots"), lazy: true },
      range(M.NET_RX_CTRL, 64, "RX ring control"), { ...range(M.NET_RX_SLOTS, M.NET_RING_ENTRIES * M.NET_SLOT_SIZE, "RX ring slots"), lazy: true },
      { ...range(CRC_LANE_TMP, M.RDMA_CTRL - CRC_LANE_TMP, "CRC kernel's lane spill"), lazy: true },
      tracked(M.RDMA_CTRL, M.RXLOG_BASE - M.RDMA_CTRL, "RDMA control and scratch"),
      { ...range(M.RXLOG_BASE, M.RXLOG_ENTRIES * M.RXLOG_ENTRY_SIZE, "receive result log"), lazy: true },
      tracked(M.QP_TABLE_BASE, M.RCQ_BASE - M.QP_TABLE_BASE, "QP table, CM, MR table"),
      tracked(blk - R.RCQ_CTRL, M.RCQ_SIZE, "the RC engine QP's queues"),
      tracked(g.base, MR_BYTES, "the memory region"),
    ];
    const canaries = [
      range(g.base + MR_BYTES, g.size - MR_BYTES, "guest RAM outside the memory region"),
      range(0, 4096, "firmware static data"),
    ]; // the CRC tables and everything else: the full audit
    // Only the firmware writes card memory here, and the fuzz build's dirty-page audit
    // checks every page it wrote after each input: the canaries add nothing but time then.
    fc.freeze(writable, fc.tracking ? [] : canaries);
    h.rx = new RxRing(fc);
    return h;
  }

  private postRecv(n: number, len: number): number {
    const card = this.fc.card, dv = card.dv, blk = card.fw.rdmaRcBlock(ENGINE_QP);
    const tail = dv.getUint32(blk + R.RCC_RQ_TAIL, true);
    // the host writes WQEs only into free slots (never over one still queued)
    n = Math.min(n, R.RC_RQ_DEPTH - ((tail - dv.getUint32(blk + R.RCC_RQ_HEAD, true)) >>> 0));
    for (let i = 0; i < n; i++) {
      const e = blk - R.RCQ_CTRL + R.RCQ_RQ + ((tail + i) % R.RC_RQ_DEPTH) * R.RWQE_SIZE;
      dv.setBigUint64(e + R.RWQE_WRID, BigInt(tail + i), true);
      dv.setBigUint64(e + R.RWQE_LADDR, BigInt(VA0 + ((i * 2048) % MR_BYTES)), true);
      dv.setUint32(e + R.RWQE_LKEY, this.key, true);
      dv.setUint32(e + R.RWQE_LEN, len, true);
      this.fc.hostWrote(e, R.RWQE_SIZE);
    }
    return card.fw.rdmaRcPostRecv(ENGINE_QP, n);
  }

  // ---- generation ----
  generate(rng: Rng): Uint8Array {
    const ops: Op[] = [];
    const msgs = 4 + rng.small(28);
    for (let m = 0; m < msgs; m++) ops.push(...this.message(rng));
    if (rng.chance(0.3)) ops.splice(rng.below(ops.length + 1), 0, this.codec.op("recv", 1 + rng.small(8), rng.pick([64, 1024, 2048, 4096])));
    return this.codec.encode({ header: Uint8Array.of(rng.next() & 0xff), ops });
  }

  /** One well-formed message (or a single packet) to one QP, sometimes damaged, then maybe a poll. */
  message(rng: Rng): Op[] {
    const c = this.codec, ops: Op[] = [];
    const qsel = rng.below(QPS.length);
    const qpn = QPS[qsel]!;
    const dmg = () => (rng.chance(0.75) ? 0 : rng.below(Dmg.COUNT));
    const dval = () => rng.pick([rng.next(), rng.below(4), rng.below(64), 0xffff - rng.below(8)]);
    if (qpn === UD_QP || qpn === W.QP1 || rng.chance(0.05)) {
      ops.push(c.op("frame", rng.pick([W.Op.UD_SEND_ONLY, W.Op.UD_SEND_ONLY, W.Op.UD_SEND_ONLY_IMM, rng.pick(OPCODES)]), qsel, rng.below(4), rng.below(2) * 0x80,
        qpn === W.QP1 ? 256 : rng.small(1100), dmg(), dval(), rng.next(), rng.chance(0.8) ? 0 : rng.next(), 0));
    } else {
      const kind = rng.below(6);
      const mtu = qpn === SEQ_QP ? 256 : 1024;
      if (kind === 0 || kind === 1) {
        // SEND or WRITE cut at the MTU: FIRST, MIDDLE..., LAST (or ONLY)
        const len = rng.small(4 * mtu);
        const n = Math.max(1, Math.ceil(len / mtu));
        const send = kind === 0, imm = rng.chance(0.2);
        for (let i = 0; i < n; i++) {
          const pos = n === 1 ? "only" : i === 0 ? "first" : i === n - 1 ? "last" : "middle";
          const op = send
            ? { first: W.Op.RC_SEND_FIRST, middle: W.Op.RC_SEND_MIDDLE, last: imm ? W.Op.RC_SEND_LAST_IMM : rng.chance(0.1) ? W.Op.RC_SEND_LAST_INV : W.Op.RC_SEND_LAST, only: imm ? W.Op.RC_SEND_ONLY_IMM : rng.chance(0.1) ? W.Op.RC_SEND_ONLY_INV : W.Op.RC_SEND_ONLY }[pos]
            : { first: W.Op.RC_WRITE_FIRST, middle: W.Op.RC_WRITE_MIDDLE, last: imm ? W.Op.RC_WRITE_LAST_IMM : W.Op.RC_WRITE_LAST, only: imm ? W.Op.RC_WRITE_ONLY_IMM : W.Op.RC_WRITE_ONLY }[pos];
          const plen = i < n - 1 ? mtu : len - (n - 1) * mtu;
          ops.push(c.op("frame", op, qsel, 0, (i === n - 1 ? 1 : 0) | (rng.chance(0.1) ? 0x80 : 0), plen, dmg(), dval(), rng.below(MR_BYTES - len + 1), 0, len));
        }
      } else if (kind === 2) {
        ops.push(c.op("frame", W.Op.RC_READ_REQUEST, qsel, 0, 1, 0, dmg(), dval(), rng.below(MR_BYTES), 0, rng.small(3 * mtu)));
      } else if (kind === 3) {
        // responses and acknowledgements (the completer's side) with an AETH
        const op = rng.pick([W.Op.RC_ACK, W.Op.RC_ACK, W.Op.RC_READ_RESPONSE_ONLY, W.Op.RC_READ_RESPONSE_FIRST, W.Op.RC_READ_RESPONSE_MIDDLE, W.Op.RC_READ_RESPONSE_LAST, W.Op.RC_ATOMIC_ACK, W.Op.CNP]);
        const aeth = rng.pick([W.AETH_ACK | 0x1f, W.AETH_NAK | rng.below(4), W.AETH_RNR_NAK | rng.below(32), rng.below(256)]) * 0x1000000 + rng.below(16);
        ops.push(c.op("frame", op, qsel, rng.below(3), 0, op === W.Op.RC_ACK || op === W.Op.RC_ATOMIC_ACK || op === W.Op.CNP ? 0 : rng.small(mtu), dmg(), dval(), aeth >>> 0, 0, 0));
      } else if (kind === 4) {
        ops.push(c.op("frame", rng.pick([W.Op.RC_CMP_SWAP, W.Op.RC_FETCH_ADD]), qsel, 0, 1, 0, dmg(), dval(), rng.below(MR_BYTES) & ~7, 0, rng.next()));
      } else {
        // any opcode, any PSN: a packet out of place
        ops.push(c.op("frame", rng.pick(OPCODES), qsel, rng.pick([0, 1, 0xffff, rng.below(0x10000)]), rng.below(256), rng.small(1500), dmg(), dval(), rng.next(), rng.chance(0.5) ? 0 : rng.next(), rng.small(5000)));
      }
    }
    if (rng.chance(0.3)) ops.push(c.op("poll", rng.below(256)));
    if (rng.chance(0.05)) ops.push(c.op("time", rng.small(100)));
    return ops;
  }

  mutate(input: Uint8Array, rng: Rng, steps = 1): Uint8Array {
    let p = this.codec.decode(input);
    for (let k = 0; k < steps; k++) p = this.codec.mutate(p, rng, () => this.message(rng));
    return this.codec.encode(p);
  }

  // ---- one frame op → frame ----

  /** The QP a frame op addresses, whether it is a response (PSN from the requester's side), and its PSN offset. */
  target(v: readonly number[]): { qpn: number; resp: boolean; off: number } {
    const opcode = v[0]!;
    return {
      qpn: v[1]! < QPS.length ? QPS[v[1]!]! : v[1]!,
      resp: opcode >= W.Op.RC_READ_RESPONSE_FIRST && opcode <= W.Op.RC_ATOMIC_ACK,
      off: (v[2]! << 16) >> 16,
    };
  }

  /** Build frame op `v` at card offset f, its PSN `expected` + the op's offset; returns the slot length (buildFrame). */
  build(f: number, v: readonly number[], expected: number): number {
    const { qpn, off } = this.target(v);
    const ud = qpn === UD_QP || qpn === W.QP1;
    return buildFrame(this.fc, f, {
      opcode: v[0]!, dqp: qpn, psn: (expected + off) & W.PSN_MASK, ackreq: (v[3]! & 1) !== 0, seM: v[3]!, plen: Math.min(v[4]!, M.NET_FRAME_MAX),
      va: v[7]!, key: v[8]! || (ud ? 0 : this.key), dlen: v[9]! || v[4]!,
      qkey: v[8]! || (qpn === W.QP1 ? W.GSI_QKEY : UD_QKEY), srcQp: v[7]! & 0xffffff, dmg: v[5]!, dv: v[6]!,
    }, this.fill.subarray(v[7]! & 0xfff));
  }

  /** The PSN a QP's responder (or, for responses, its requester) expects now. */
  expectedPsn(qpn: number, resp: boolean): number {
    const fw = this.fc.card.fw;
    return this.fc.card.dv.getUint32(fw.rdmaQpAddr(qpn) + (resp ? QP_SQ_UNA : QP_RQ_EPSN), true);
  }

  // ---- running ----
  reset(): void {
    this.rx.restore();
    this.fc.card.fw.rdmaRcPoll(0, 0); // the engine's clock back to 0
  }

  run(input: Uint8Array): void {
    const fc = this.fc, card = fc.card, fw = card.fw;
    const rx = this.rx;
    this.reset();
    let now = 0;
    const p = this.codec.decode(input);
    rx.begin();
    // requests count from the PSN the responder expects, responses from the oldest one we await
    const next = new Map<number, number>();
    const expected = (qpn: number, resp: boolean) => {
      const k = resp ? qpn + 0x1000000 : qpn;
      let v = next.get(k);
      if (v === undefined) { v = this.expectedPsn(qpn, resp); next.set(k, v); }
      return v;
    };
    const push = (build: (f: number) => number, wrote?: () => number) => rx.push(build, wrote);
    for (const op of p.ops) {
      const v = op.vals;
      switch (OPS[op.code]!.name) {
        case "frame": {
          const { qpn, resp, off } = this.target(v);
          const e = expected(qpn, resp);
          if (off === 0) next.set(resp ? qpn + 0x1000000 : qpn, (e + 1) & W.PSN_MASK);
          push((f) => this.build(f, v, e), () => built.wrote);
          break;
        }
        case "raw": push((f) => rawFrame(fc, f, op.blob!, (v[0]! & 1) !== 0)); break;
        case "poll": fw.rdmaRcPoll(v[0]! + 1, now); now += 1000; break;
        case "recv": this.postRecv(v[0]! % 65, v[1]!); break;
        case "time": now += (v[0]! + 1) * 1000; fw.rdmaRcPoll(0, now); break;
      }
    }
    for (let i = 0; i < 8 && rx.pending() !== 0; i++) fw.rdmaRcPoll(1024, now);
    rx.check();
    fc.auditCanaries();
  }

  explain(input: Uint8Array): string[] { return this.codec.explain(input); }
  collect(seen: Uint8Array): number { return this.fc.collect(seen); }
  byFile(seen: Uint8Array, perFunction?: boolean): Record<string, [number, number]> { return this.fc.byFile(seen, perFunction); }
  fullAudit(): void { this.fc.auditFull(); }
  restoreAll(): void { this.fc.restoreAll(); this.rx.slotBytes.fill(0); }
}

export const roceRxTarget: Target = {
  name: "roce-rx",
  about: "RoCEv2 frames (every opcode, extension headers, pad, ICRC, damaged fields) into the receive path, QPs in every state; every frame accounted for once",
  create: (opts) => RoceRxHarness.create(opts?.module),
};
