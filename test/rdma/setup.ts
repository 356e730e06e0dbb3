// Shared helpers for the RoCEv2 wire-layer tests: a card, transmit descriptors, the frame
// rings and the receive result log, and an independent (spec-derived) frame encoder.
import { crc32 } from "node:zlib";
import { Card } from "../../host/card.js";
import * as M from "../../assembly/memmap.js";
import * as W from "../../assembly/rdma/wire.js";

export { W, M };

export async function card(): Promise<Card> {
  return Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [] });
}

/** What a transmit descriptor carries (wire.ts TXD_*). */
export interface Desc {
  dstMac?: number[]; srcMac?: number[]; srcIp?: number[]; dstIp?: number[];
  sport?: number; tos?: number; ttl?: number;
  opcode: number; seM?: number; pkey?: number; dqp?: number; psn?: number; ackreq?: boolean;
  va?: bigint; rkey?: number; dmaLen?: number; aeth?: number; imm?: number; iethRkey?: number;
  qkey?: number; srcQp?: number; payload?: Uint8Array; mtu?: number; immFlag?: boolean; port?: number;
  swap?: bigint; cmp?: bigint; orig?: bigint; fromPkt?: number;
}

export const DEFAULTS = {
  dstMac: [0x02, 0, 0, 0, 0, 0x02], srcMac: [0x02, 0, 0, 0, 0, 0x01],
  srcIp: [10, 0, 0, 1], dstIp: [10, 0, 0, 2], sport: 0xc011, tos: 0, ttl: 64, pkey: 0xffff,
};

/** Write d into the firmware's scratch descriptor (payload placed in guest 0's RAM); returns its address. */
export function writeDesc(c: Card, d: Desc): number {
  const a = c.fw.rdmaTxDesc();
  const dv = c.dv;
  c.u8.fill(0, a, a + W.TXD_SIZE);
  c.u8.set(d.dstMac ?? DEFAULTS.dstMac, a + W.TXD_DST_MAC);
  c.u8.set(d.srcMac ?? DEFAULTS.srcMac, a + W.TXD_SRC_MAC);
  c.u8.set(d.srcIp ?? DEFAULTS.srcIp, a + W.TXD_SRC_IP);
  c.u8.set(d.dstIp ?? DEFAULTS.dstIp, a + W.TXD_DST_IP);
  dv.setUint16(a + W.TXD_SPORT, d.sport ?? DEFAULTS.sport, true);
  dv.setUint8(a + W.TXD_TOS, d.tos ?? DEFAULTS.tos);
  dv.setUint8(a + W.TXD_TTL, d.ttl ?? DEFAULTS.ttl);
  dv.setUint8(a + W.TXD_OPCODE, d.opcode);
  dv.setUint8(a + W.TXD_BTH_FLAGS, d.seM ?? 0);
  dv.setUint16(a + W.TXD_PKEY, d.pkey ?? DEFAULTS.pkey, true);
  dv.setUint32(a + W.TXD_DQP, d.dqp ?? 0x11, true);
  dv.setUint32(a + W.TXD_PSN, d.psn ?? 0, true);
  dv.setUint32(a + W.TXD_ACKREQ, d.ackreq ? 1 : 0, true);
  dv.setBigUint64(a + W.TXD_RETH_VA, d.va ?? 0n, true);
  dv.setUint32(a + W.TXD_RETH_RKEY, d.rkey ?? 0, true);
  dv.setUint32(a + W.TXD_RETH_LEN, d.dmaLen ?? 0, true);
  dv.setUint32(a + W.TXD_AETH, d.aeth ?? 0, true);
  dv.setUint32(a + W.TXD_IMM, d.imm ?? 0, true);
  dv.setUint32(a + W.TXD_IETH_RKEY, d.iethRkey ?? 0, true);
  dv.setUint32(a + W.TXD_DETH_QKEY, d.qkey ?? 0, true);
  dv.setUint32(a + W.TXD_DETH_SRCQP, d.srcQp ?? 0, true);
  dv.setBigUint64(a + W.TXD_ATOMIC_SWAP, d.swap ?? 0n, true);
  dv.setBigUint64(a + W.TXD_ATOMIC_CMP, d.cmp ?? 0n, true);
  dv.setBigUint64(a + W.TXD_ATOMIC_ORIG, d.orig ?? 0n, true);
  const g = c.guests[0]!;
  const pl = d.payload ?? new Uint8Array(0);
  c.u8.set(pl, g.base);
  dv.setUint32(a + W.TXD_PAYLOAD, g.base, true);
  dv.setUint32(a + W.TXD_LEN, pl.length, true);
  dv.setUint32(a + W.TXD_MTU, d.mtu ?? 1024, true);
  dv.setUint32(a + W.TXD_IMM_FLAG, d.immFlag ? 1 : 0, true);
  dv.setUint32(a + W.TXD_PORT, d.port ?? 0, true);
  dv.setUint32(a + W.TXD_FROM_PKT, d.fromPkt ?? 0, true);
  return a;
}

/** Every frame the firmware put into the TX ring, in order (consumes them). */
export function txDrain(c: Card): Uint8Array[] {
  const dv = c.dv;
  const prod = dv.getUint32(M.NET_TX_CTRL, true);
  let cons = dv.getUint32(M.NET_TX_CTRL + 4, true);
  const out: Uint8Array[] = [];
  for (; cons !== prod; cons = (cons + 1) >>> 0) {
    const s = M.NET_TX_SLOTS + (cons % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
    const len = dv.getUint32(s + M.NET_SLOT_LEN_OFF, true);
    out.push(c.u8.slice(s + M.NET_SLOT_HDR, s + M.NET_SLOT_HDR + len));
  }
  dv.setUint32(M.NET_TX_CTRL + 4, cons, true);
  return out;
}

/** Put frames into the RX ring as the fabric does. */
export function rxPush(c: Card, frames: Uint8Array[]): void {
  const dv = c.dv;
  let prod = dv.getUint32(M.NET_RX_CTRL, true);
  for (const f of frames) {
    const s = M.NET_RX_SLOTS + (prod % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
    dv.setUint32(s + M.NET_SLOT_LEN_OFF, f.length, true);
    dv.setUint32(s + M.NET_SLOT_PORT_OFF, 0, true);
    c.u8.set(f.subarray(0, Math.min(f.length, M.NET_FRAME_MAX)), s + M.NET_SLOT_HDR);
    prod = (prod + 1) >>> 0;
  }
  dv.setUint32(M.NET_RX_CTRL, prod, true);
}

export interface LogEntry {
  frame: number; opcode: number; pos: number; flags: number; pad: number; dqp: number; psn: number;
  reason: string | null; payloadLen: number; cls: number; icrcOk: boolean; accepted: boolean;
}

/** Entries of the receive result log not read yet (advances the consumer). */
export function rxLog(c: Card, counterName: (n: number) => string): LogEntry[] {
  const dv = c.dv;
  const prod = dv.getUint32(M.RDMA_CTRL + W.RC_LOG_PROD, true);
  let cons = dv.getUint32(M.RDMA_CTRL + W.RC_LOG_CONS, true);
  const out: LogEntry[] = [];
  for (; cons !== prod; cons = (cons + 1) >>> 0) {
    const l = M.RXLOG_BASE + (cons % M.RXLOG_ENTRIES) * M.RXLOG_ENTRY_SIZE;
    const flags = dv.getUint8(l + W.RXL_FLAGS);
    const r = dv.getUint32(l + W.RXL_REASON, true);
    out.push({
      frame: dv.getUint32(l + W.RXL_FRAME, true), opcode: dv.getUint8(l + W.RXL_OPCODE), pos: dv.getUint8(l + W.RXL_POS),
      flags, pad: dv.getUint8(l + W.RXL_PAD), dqp: dv.getUint32(l + W.RXL_DQP, true), psn: dv.getUint32(l + W.RXL_PSN, true),
      reason: r === 0 ? null : counterName(r), payloadLen: dv.getUint32(l + W.RXL_PAYLOAD_LEN, true), cls: dv.getUint8(l + W.RXL_CLASS),
      icrcOk: (flags & W.RXF_ICRC_OK) !== 0, accepted: (flags & W.RXF_ACCEPTED) !== 0,
    });
  }
  dv.setUint32(M.RDMA_CTRL + W.RC_LOG_CONS, cons, true);
  return out;
}

// ---- independent encoder, field by field from the specs (not the firmware's code) ----

const be16 = (v: number) => [(v >>> 8) & 0xff, v & 0xff];
const be24 = (v: number) => [(v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const be32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const be64 = (v: bigint) => [...be32(Number(v >> 32n)), ...be32(Number(v & 0xffffffffn))];

/** RFC 1071 checksum of a header. */
export function inetChecksum(h: number[] | Uint8Array): number {
  let s = 0;
  for (let i = 0; i < h.length; i += 2) s += (h[i]! << 8) | (h[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** ICRC per Annex A17.3.3 with node:zlib's CRC-32 over the masked bytes of frame f. */
export function icrcRef(f: Uint8Array): number {
  const ipLen = (f[16]! << 8) | f[17]!;
  const body = Uint8Array.from(f.subarray(14, 14 + ipLen - 4));
  body[1] = 0xff; // TOS
  body[8] = 0xff; // TTL
  body[10] = 0xff; body[11] = 0xff; // IP header checksum
  body[26] = 0xff; body[27] = 0xff; // UDP checksum
  body[28 + 4] = 0xff; // BTH reserved byte (FECN/BECN)
  const all = new Uint8Array(8 + body.length);
  all.fill(0xff, 0, 8);
  all.set(body, 8);
  return crc32(all) >>> 0;
}

/** Headers after the BTH, in IBTA order, for opcode op (from §9.4.1 table 38 directly). */
export function extHeaders(op: number, d: Desc, dmaLen: number): number[] {
  const reth = () => [...be64(d.va ?? 0n), ...be32(d.rkey ?? 0), ...be32(dmaLen)];
  const aeth = () => be32(d.aeth ?? 0);
  const imm = () => be32(d.imm ?? 0);
  switch (op) {
    case 0x03: case 0x05: case 0x09: return imm();
    case 0x06: case 0x0a: case 0x0c: return reth();
    case 0x0b: return [...reth(), ...imm()];
    case 0x0d: case 0x0f: case 0x10: case 0x11: return aeth();
    case 0x12: return [...aeth(), ...be64(d.orig ?? 0n)];
    case 0x13: case 0x14: return [...be64(d.va ?? 0n), ...be32(d.rkey ?? 0), ...be64(d.swap ?? 0n), ...be64(d.cmp ?? 0n)];
    case 0x16: case 0x17: return be32(d.iethRkey ?? 0);
    case 0x64: return [...be32(d.qkey ?? 0), 0, ...be24(d.srcQp ?? 0)];
    case 0x65: return [...be32(d.qkey ?? 0), 0, ...be24(d.srcQp ?? 0), ...imm()];
    case 0x81: return new Array(16).fill(0); // CNP reserved bytes
    default: return [];
  }
}

/** The frame the spec says packet (op, psn, ackreq, payload) of descriptor d is. */
export function expectedFrame(d: Desc, op: number, psn: number, ackreq: boolean, payload: Uint8Array, dmaLen: number): Uint8Array {
  const ext = extHeaders(op, d, dmaLen);
  const pad = (4 - (payload.length % 4)) % 4;
  const ipLen = 20 + 8 + 12 + ext.length + payload.length + pad + 4;
  const ip = [0x45, d.tos ?? 0, ...be16(ipLen), 0, 0, 0x40, 0x00, d.ttl ?? 64, 17, 0, 0, ...(d.srcIp ?? DEFAULTS.srcIp), ...(d.dstIp ?? DEFAULTS.dstIp)];
  const cs = inetChecksum(ip);
  ip[10] = cs >>> 8; ip[11] = cs & 0xff;
  const udp = [...be16(d.sport ?? DEFAULTS.sport), ...be16(4791), ...be16(ipLen - 20), 0, 0];
  const bth = [op, (d.seM ?? 0) | (pad << 4), ...be16(d.pkey ?? 0xffff), 0, ...be24(d.dqp ?? 0x11), ackreq ? 0x80 : 0, ...be24(psn)];
  const bytes = [...(d.dstMac ?? DEFAULTS.dstMac), ...(d.srcMac ?? DEFAULTS.srcMac), 0x08, 0x00, ...ip, ...udp, ...bth, ...ext, ...payload, ...new Array(pad).fill(0), 0, 0, 0, 0];
  const f = Uint8Array.from(bytes);
  const icrc = icrcRef(f);
  const n = f.length - 4;
  f[n] = icrc & 0xff; f[n + 1] = (icrc >>> 8) & 0xff; f[n + 2] = (icrc >>> 16) & 0xff; f[n + 3] = icrc >>> 24;
  if (f.length < 60) { const g = new Uint8Array(60); g.set(f); return g; }
  return f;
}

export function pattern(n: number, seed = 1): Uint8Array {
  const p = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; p[i] = x >>> 24; }
  return p;
}
