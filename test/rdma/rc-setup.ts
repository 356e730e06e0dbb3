// Two firmware cards joined by a Fabric, one RC QP each driven by the firmware's RC engine
// (assembly/rdma/req.ts, resp.ts): memory regions, posting work requests, reading completions.
import { Card } from "../../host/card.js";
import { Fabric } from "../../host/fabric/fabric.js";
import type { Link, LinkOptions } from "../../host/fabric/link.js";
import { Counter } from "../../assembly/counters.js";
import * as M from "../../assembly/memmap.js";
import * as W from "../../assembly/rdma/wire.js";
import * as R from "../../assembly/rdma/rcdefs.js";

export { R, W };

export const RAM = 1 << 20;
/** Every card registers its guest 0 RAM as VAs from here. */
export const VA0 = 0x1_2345_0000n;

export interface Side {
  c: Card; qpn: number; key: number; ram: number; blk: number;
}

export interface Pair { a: Side; b: Side; fabric: Fabric; link: Link; now: number }

export interface PairOptions {
  mtu?: number; link?: LinkOptions; seed?: number; retry?: number; rnrRetry?: number; timeoutNs?: number;
  ackEvery?: number; maxWr?: number; psnA?: number; psnB?: number; access?: number;
}

const QP_A = 0x11, QP_B = 0x12;

function setupSide(c: Card, qpn: number, peer: number, mtu: number, sendPsn: number, recvPsn: number, o: PairOptions, mac: number): Side {
  const fw = c.fw;
  if (fw.rdmaQpModify(qpn, 1, W.Transport.RC, 0, 0) !== 0) throw new Error("INIT");
  if (fw.rdmaQpModify(qpn, 2, mtu, peer, recvPsn) !== 0) throw new Error("RTR");
  if (fw.rdmaQpModify(qpn, 3, o.retry ?? 7, o.rnrRetry ?? 7, sendPsn) !== 0) throw new Error("RTS");
  if (fw.rdmaRcEnable(qpn, o.timeoutNs ?? 20_000, o.ackEvery ?? 4, 1, o.maxWr ?? 16) !== 0) throw new Error("enable");
  const blk = fw.rdmaRcBlock(qpn);
  const d = blk + R.RCC_TXD, dv = c.dv;
  c.u8.set([2, 0, 0, 0, 0, mac ^ 3], d + W.TXD_DST_MAC);
  c.u8.set([2, 0, 0, 0, 0, mac], d + W.TXD_SRC_MAC);
  c.u8.set([10, 0, 0, mac], d + W.TXD_SRC_IP);
  c.u8.set([10, 0, 0, mac ^ 3], d + W.TXD_DST_IP);
  dv.setUint16(d + W.TXD_SPORT, 0xc000 | qpn, true);
  dv.setUint8(d + W.TXD_TTL, 64);
  dv.setUint16(d + W.TXD_PKEY, 0xffff, true);
  const g = c.guests[0]!;
  const key = fw.rdmaMrRegister(0, 0, RAM, Number(VA0 >> 32n), Number(VA0 & 0xffffffffn), o.access ?? (R.MR_LOCAL_WRITE | R.MR_REMOTE_READ | R.MR_REMOTE_WRITE));
  if (key === 0) throw new Error("MR");
  return { c, qpn, key, ram: g.base, blk };
}

export async function pair(o: PairOptions = {}): Promise<Pair> {
  const mtu = o.mtu ?? 1024;
  const a = await Card.create({ guests: [{ ramBytes: RAM }], disks: [] });
  const b = await Card.create({ guests: [{ ramBytes: RAM }], disks: [] });
  const fabric = new Fabric({ seed: o.seed ?? 1 });
  const link = fabric.connect({ card: a, port: 0 }, { card: b, port: 0 }, o.link ?? { gbps: 100, latencyNs: 1000 });
  const pa = o.psnA ?? 100, pb = o.psnB ?? 5000;
  return { a: setupSide(a, QP_A, QP_B, mtu, pa, pb, o, 1), b: setupSide(b, QP_B, QP_A, mtu, pb, pa, o, 2), fabric, link, now: 0 };
}

/** Run poll rounds of 1 µs of virtual time until done() or maxRounds; returns the rounds run. */
export function run(p: Pair, done: () => boolean, maxRounds = 20000): number {
  let i = 0;
  for (; i < maxRounds && !done(); i++) {
    p.now += 1000;
    p.a.c.fw.rdmaRcPoll(1024, p.now);
    p.b.c.fw.rdmaRcPoll(1024, p.now);
    p.fabric.step(p.now);
  }
  return i;
}

export interface SendWr {
  op: number; wrid: number; off: number; len: number; lkey?: number; roff?: number; rkey?: number; imm?: number; raddr?: bigint;
  /** WRITE_PKT: the packet's Pos (wire.ts); flags: SWF_* (rcdefs.ts). */
  pos?: number; flags?: number;
}

/** Write WQEs at the send queue's tail and post them in one call. */
export function postSend(s: Side, wrs: SendWr[]): number {
  const dv = s.c.dv;
  const tail = dv.getUint32(s.blk + R.RCC_SQ_TAIL, true);
  wrs.forEach((w, i) => {
    const e = s.blk - R.RCQ_CTRL + R.RCQ_SQ + ((tail + i) % R.RC_SQ_DEPTH) * R.SWQE_SIZE;
    s.c.u8.fill(0, e, e + R.SWQE_SIZE);
    dv.setBigUint64(e + R.SWQE_WRID, BigInt(w.wrid), true);
    dv.setUint32(e + R.SWQE_OP, w.op, true);
    if (w.pos !== undefined) dv.setUint8(e + R.SWQE_POS, w.pos);
    if (w.flags !== undefined) dv.setUint16(e + R.SWQE_FLAGS, w.flags, true);
    dv.setUint32(e + R.SWQE_LKEY, w.lkey ?? s.key, true);
    dv.setBigUint64(e + R.SWQE_LADDR, VA0 + BigInt(w.off), true);
    dv.setUint32(e + R.SWQE_LEN, w.len, true);
    dv.setUint32(e + R.SWQE_RKEY, w.rkey ?? 0, true);
    dv.setBigUint64(e + R.SWQE_RADDR, w.raddr ?? VA0 + BigInt(w.roff ?? 0), true);
    dv.setUint32(e + R.SWQE_IMM, w.imm ?? 0, true);
  });
  return s.c.fw.rdmaRcPostSend(s.qpn, wrs.length);
}

/** Write receive WQEs at the receive queue's tail and post them in one call. */
export function postRecv(s: Side, wrs: { wrid: number; off: number; len: number; lkey?: number }[]): number {
  const dv = s.c.dv;
  const tail = dv.getUint32(s.blk + R.RCC_RQ_TAIL, true);
  wrs.forEach((w, i) => {
    const e = s.blk - R.RCQ_CTRL + R.RCQ_RQ + ((tail + i) % R.RC_RQ_DEPTH) * R.RWQE_SIZE;
    dv.setBigUint64(e + R.RWQE_WRID, BigInt(w.wrid), true);
    dv.setBigUint64(e + R.RWQE_LADDR, VA0 + BigInt(w.off), true);
    dv.setUint32(e + R.RWQE_LKEY, w.lkey ?? s.key, true);
    dv.setUint32(e + R.RWQE_LEN, w.len, true);
  });
  return s.c.fw.rdmaRcPostRecv(s.qpn, wrs.length);
}

export interface Cqe { wrid: number; status: number; opcode: number; len: number; imm: number | null; qpn: number }

/** Completions not read yet (advances the consumer). */
export function poll(s: Side): Cqe[] {
  const dv = s.c.dv;
  const prod = dv.getUint32(s.blk + R.RCC_CQ_PROD, true);
  let cons = dv.getUint32(s.blk + R.RCC_CQ_CONS, true);
  const out: Cqe[] = [];
  for (; cons !== prod; cons = (cons + 1) >>> 0) {
    const e = s.blk - R.RCQ_CTRL + R.RCQ_CQ + (cons % R.RC_CQ_DEPTH) * R.CQE_SIZE;
    out.push({
      wrid: Number(dv.getBigUint64(e + R.CQE_WRID, true)), status: dv.getUint32(e + R.CQE_STATUS, true), opcode: dv.getUint32(e + R.CQE_OPCODE, true),
      len: dv.getUint32(e + R.CQE_BYTE_LEN, true), imm: dv.getUint32(e + R.CQE_FLAGS, true) & R.CQF_IMM ? dv.getUint32(e + R.CQE_IMM, true) : null,
      qpn: dv.getUint32(e + R.CQE_QPN, true),
    });
  }
  dv.setUint32(s.blk + R.RCC_CQ_CONS, cons, true);
  return out;
}

export function ram(s: Side, off: number, len: number): Uint8Array { return s.c.u8.slice(s.ram + off, s.ram + off + len); }
export function fill(s: Side, off: number, data: Uint8Array): void { s.c.u8.set(data, s.ram + off); }
export function counters(s: Side): Record<string, number> { return s.c.counters(); }
export const QpState = { RESET: 0, INIT: 1, RTR: 2, RTS: 3, ERR: 4 };
export { Counter, M };
