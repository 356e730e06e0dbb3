// A host card and a storage-side NIC card on a Fabric, joined by RDMA-CM: the NIC card runs
// nicInit / nicCtrlEnable / nicBindQp; the tests play the storage controllers (they read the
// command rings, write NIC WQEs into the send queues, ring doorbells, read events) and the
// host (RC work requests on its CM-connected QPs, through test/rdma/rc-setup.ts helpers).
import { expect } from "vitest";
import { pair as cmPair, connect, conn, conns, CW, type Pair as CmPair } from "../rdma/cm-pair.js";
import { postSend, postRecv, poll, ram, fill, R, W, VA0, type Side, type Cqe } from "../rdma/rc-setup.js";
import type { LinkOptions } from "../../host/fabric/link.js";
import type { Card } from "../../host/card.js";
import * as M from "../../assembly/memmap.js";
import * as N from "../../assembly/nic/defs.js";
import { Counter } from "../../assembly/counters.js";

export { N, M, R, W, VA0, Counter, postSend, postRecv, poll, ram, fill, type Side, type Cqe };

/** A frame the NIC card sent toward the host: opcode, dest QP, PSN. */
export interface Sent { op: number; dqp: number; psn: number }

export interface Rig {
  p: CmPair; host: Card; nic: Card;
  /** Per queue: the host's side of the connection, and the NIC card's QPN. */
  hq: Side[]; tqpn: number[];
  /** What the NIC card put on the wire toward the host, in order (ACKs left out). */
  sent: Sent[];
  mtu: number;
}

export interface RigOptions { queues?: number; ctrls?: number; bind?: number[]; flags?: number; mtu?: number; link?: LinkOptions; seed?: number }

const ACK = 0x11;

export async function rig(o: RigOptions = {}): Promise<Rig> {
  const sent: Sent[] = [];
  const p = await cmPair(o.link ?? {}, {
    seed: o.seed ?? 7,
    onEvent: (e) => {
      if (e.kind !== "frame" || e.dir !== "tx" || e.way !== "ba") return;
      const b = e.bytes;
      if (b[42] === ACK || b[42] === 0x64) return;
      sent.push({ op: b[42]!, dqp: (b[47]! << 16) | (b[48]! << 8) | b[49]!, psn: (b[51]! << 16) | (b[52]! << 8) | b[53]! });
    },
  });
  const mtu = o.mtu ?? 1024, queues = o.queues ?? 1, ctrls = o.ctrls ?? 2;
  const nic = p.target, host = p.host;
  expect(nic.fw.nicInit(o.flags ?? 0)).toBe(0);
  for (let k = 0; k < ctrls; k++) expect(nic.fw.nicCtrlEnable(k)).not.toBe(0);
  nic.fw.rdmaCmListen(4420);
  const ids = Array.from({ length: queues }, (_, q) => connect(p, q, 32, 31, 4420, mtu));
  const r: Rig = { p, host, nic, hq: [], tqpn: [], sent, mtu };
  rounds(r, () => ids.every((id) => host.fw.rdmaCmState(id) === CW.CmState.ESTABLISHED)
    && [...conns(nic).values()].filter((c) => c.state === "ESTABLISHED").length === queues);
  const key = host.fw.rdmaMrRegister(0, 0, 1 << 20, Number(VA0 >> 32n), Number(VA0 & 0xffffffffn), R.MR_LOCAL_WRITE | R.MR_REMOTE_WRITE | R.MR_REMOTE_READ);
  expect(key).not.toBe(0);
  for (const [q, id] of ids.entries()) {
    const h = conn(host, id);
    const t = [...conns(nic).values()].find((c) => c.remoteCommId === h.localCommId)!;
    r.hq.push({ c: host, qpn: h.localQpn, key, ram: host.guests[0]!.base, blk: host.fw.rdmaRcBlock(h.localQpn) });
    r.tqpn.push(t.localQpn);
    const k = o.bind?.[q] ?? q % ctrls;
    if (k >= 0) expect(nic.fw.nicBindQp(t.localQpn, k)).toBe(0);
  }
  return r;
}

/** Poll rounds of 1 µs of virtual time (rdmaPoll on both cards, then the fabric) until done() or max. */
export function rounds(r: Rig, done: () => boolean, max = 20_000): number {
  let i = 0;
  for (; i < max && !done(); i++) {
    r.p.now += 1000;
    r.host.fw.rdmaPoll(1024, r.p.now);
    r.nic.fw.rdmaPoll(1024, r.p.now);
    r.p.fabric.step(r.p.now);
  }
  return i;
}

export const ctrlBase = (k: number) => M.NIC_CTRLS + k * M.NIC_CTRL_SIZE;
export const stageBase = (k: number) => M.NIC_STAGE_BASE + k * M.NIC_STAGE_SIZE;
export const cb = (c: Card, k: number, f: number) => c.dv.getUint32(ctrlBase(k) + f, true);
export const setCb = (c: Card, k: number, f: number, v: number) => c.dv.setUint32(ctrlBase(k) + f, v >>> 0, true);

export interface Wqe {
  type: number; qpn: number; stageOff?: number; len?: number; flags?: number; cid?: number; raddr?: bigint; rkey?: number;
  total?: number; piOff?: number; reftag?: number; block?: number; tag?: number;
}

/** Write NIC WQEs at controller k's send queue tail and move the tail (no doorbell). */
export function writeWqes(c: Card, k: number, ws: Wqe[]): void {
  const dv = c.dv;
  let tail = cb(c, k, N.CB_SQ_TAIL);
  for (const w of ws) {
    const e = ctrlBase(k) + N.NC_SQ + (tail % M.NIC_SQ_DEPTH) * N.NW_SIZE;
    c.u8.fill(0, e, e + N.NW_SIZE);
    dv.setUint8(e + N.NW_TYPE, w.type);
    dv.setUint8(e + N.NW_FLAGS, w.flags ?? 0);
    dv.setUint16(e + N.NW_CID, w.cid ?? 0, true);
    dv.setUint32(e + N.NW_QPN, w.qpn, true);
    dv.setUint32(e + N.NW_STAGE_OFF, w.stageOff ?? 0, true);
    dv.setUint32(e + N.NW_LEN, w.len ?? 0, true);
    dv.setBigUint64(e + N.NW_RADDR, w.raddr ?? 0n, true);
    dv.setUint32(e + N.NW_RKEY, w.rkey ?? 0, true);
    dv.setUint32(e + N.NW_TOTAL, w.total ?? 0, true);
    dv.setUint32(e + N.NW_PI_OFF, w.piOff ?? 0, true);
    dv.setUint32(e + N.NW_REFTAG, w.reftag ?? 0, true);
    dv.setUint32(e + N.NW_BLOCK, w.block ?? 0, true);
    dv.setUint32(e + N.NW_TAG, w.tag ?? 0, true);
    tail = (tail + 1) >>> 0;
  }
  setCb(c, k, N.CB_SQ_TAIL, tail);
}

/**
 * The WQEs of one I/O's data as a controller writes them: [data] cut at the MTU into INITIAL /
 * INTERMEDIATE / TAIL (or one SINGLE), from staging offset `off`, to host VA `raddr`.
 */
export function dataWqes(qpn: number, mtu: number, off: number, len: number, raddr: bigint, rkey: number, extra: Partial<Wqe> = {}): Wqe[] {
  const n = Math.ceil(len / mtu);
  return Array.from({ length: n }, (_, i) => ({
    type: n === 1 ? N.NicWqeType.SINGLE : i === 0 ? N.NicWqeType.INITIAL : i === n - 1 ? N.NicWqeType.TAIL : N.NicWqeType.INTERMEDIATE,
    qpn, stageOff: off + i * mtu, len: Math.min(mtu, len - i * mtu), raddr, rkey, total: len, tag: i, ...extra,
  }));
}

/** A 16-byte NVMe CQE for command cid (status 0, phase 1) written into controller k's staging at off. */
export function writeCqe(c: Card, k: number, off: number, cid: number, dw0 = 0): Uint8Array {
  const a = stageBase(k) + off;
  c.u8.fill(0, a, a + 16);
  c.dv.setUint32(a, dw0, true);
  c.dv.setUint32(a + 12, cid | (1 << 16), true);
  return c.u8.slice(a, a + 16);
}

/** Command ring entries not consumed yet (does not consume them). */
export function commands(c: Card, k: number): { qpn: number; capsule: number; len: number; slot: number }[] {
  const out = [];
  const prod = cb(c, k, N.CB_CMD_PROD);
  for (let i = cb(c, k, N.CB_CMD_CONS); i !== prod; i = (i + 1) >>> 0) {
    const e = ctrlBase(k) + N.NC_CMD + (i % M.NIC_CMD_DEPTH) * N.CMD_SIZE;
    const u = (o: number) => c.dv.getUint32(e + o, true);
    out.push({ qpn: u(N.CMD_QPN), capsule: u(N.CMD_CAPSULE), len: u(N.CMD_LEN), slot: u(N.CMD_RECV_SLOT) });
  }
  return out;
}

/** Events not read yet; consumes them. */
export function events(c: Card, k: number): { tag: number; kind: string; status: number; qpn: number }[] {
  const out = [];
  const prod = cb(c, k, N.CB_EVT_PROD);
  let i = cb(c, k, N.CB_EVT_CONS);
  for (; i !== prod; i = (i + 1) >>> 0) {
    const e = ctrlBase(k) + N.NC_EVT + (i % M.NIC_EVT_DEPTH) * N.EV_SIZE;
    const u = (o: number) => c.dv.getUint32(e + o, true);
    out.push({ tag: u(N.EV_TAG), kind: N.EvKind[u(N.EV_KIND)]!, status: u(N.EV_STATUS), qpn: u(N.EV_QPN) });
  }
  setCb(c, k, N.CB_EVT_CONS, i);
  return out;
}

/** CRC-16 T10-DIF (poly 0x8BB7, init 0, not reflected, no final xor), bit by bit: the test's own reference. */
export function crc16(b: Uint8Array): number {
  let crc = 0;
  for (const x of b) {
    crc ^= x << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x8bb7) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** 8-byte PI (guard, application tag 0, reference tag ref + i) for each block of data, big-endian. */
export function protect(data: Uint8Array, block: number, ref: number): Uint8Array {
  const n = data.length / block, pi = new Uint8Array(n * 8), dv = new DataView(pi.buffer);
  for (let i = 0; i < n; i++) {
    dv.setUint16(i * 8, crc16(data.subarray(i * block, (i + 1) * block)));
    dv.setUint32(i * 8 + 4, (ref + i) >>> 0);
  }
  return pi;
}

export const counters = (c: Card) => c.counters() as Record<string, number>;
export const ops = (s: Sent[]) => s.map((f) => W.Op[f.op]);
export { Counter as C };
