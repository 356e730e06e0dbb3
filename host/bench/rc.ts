// RC transport: 4 KiB RDMA WRITEs from one card to another through the firmware's RC engine
// (post-send in batches, segmentation, ICRC on, responder placement into the MR, coalesced
// ACKs, completions read back) over a Fabric, beside the bare wire layer moving the same
// 4 KiB packets (rdmaTxPacket → fabric → rdmaRxPoll, no transport state): what reliability costs.
import { Card } from "../card.js";
import { Fabric } from "../fabric/fabric.js";
import * as W from "../../assembly/rdma/wire.js";
import * as R from "../../assembly/rdma/rcdefs.js";
import { compare, type BenchOptions, type Figure } from "./harness.js";

const LEN = 4096;
const RAM = 1 << 20;

async function side(qpn: number, peer: number, mac: number): Promise<{ c: Card; key: number; blk: number }> {
  const c = await Card.create({ guests: [{ ramBytes: RAM }], disks: [] });
  const fw = c.fw;
  fw.rdmaQpModify(qpn, 1, W.Transport.RC, 0, 0);
  fw.rdmaQpModify(qpn, 2, 4096, peer, 0);
  fw.rdmaQpModify(qpn, 3, 7, 7, 0);
  fw.rdmaRcEnable(qpn, 1e6, 16, 1, R.RC_SQ_DEPTH);
  const blk = fw.rdmaRcBlock(qpn), d = blk + R.RCC_TXD;
  c.u8.set([2, 0, 0, 0, 0, mac ^ 3, 2, 0, 0, 0, 0, mac], d + W.TXD_DST_MAC);
  c.u8.set([10, 0, 0, mac, 10, 0, 0, mac ^ 3], d + W.TXD_SRC_IP);
  c.dv.setUint16(d + W.TXD_SPORT, 0xc000 | qpn, true);
  c.dv.setUint8(d + W.TXD_TTL, 64);
  c.dv.setUint16(d + W.TXD_PKEY, 0xffff, true);
  const key = fw.rdmaMrRegister(0, 0, RAM, 0, 0, R.MR_LOCAL_WRITE | R.MR_REMOTE_WRITE | R.MR_REMOTE_READ);
  return { c, key, blk };
}

export async function benchRcWrite(o: BenchOptions): Promise<Figure> {
  const a = await side(0x11, 0x12, 1), b = await side(0x12, 0x11, 2);
  const f = new Fabric({ seed: 1 });
  f.connect({ card: a.c, port: 0 }, { card: b.c, port: 0 }, { gbps: 1e6, latencyNs: 100 });
  const adv = a.c.dv;
  let now = 0, wrid = 0;
  const rcRound = () => {
    // Keep the send queue full: WQEs at the tail, one post for all of them.
    const tail = adv.getUint32(a.blk + R.RCC_SQ_TAIL, true);
    const free = R.RC_SQ_DEPTH - (tail - adv.getUint32(a.blk + R.RCC_SQ_HEAD, true));
    for (let i = 0; i < free; i++) {
      const e = a.blk - R.RCQ_CTRL + R.RCQ_SQ + ((tail + i) % R.RC_SQ_DEPTH) * R.SWQE_SIZE;
      adv.setBigUint64(e + R.SWQE_WRID, BigInt(wrid++), true);
      adv.setUint32(e + R.SWQE_OP, R.WrOp.WRITE, true);
      adv.setUint32(e + R.SWQE_LKEY, a.key, true);
      adv.setBigUint64(e + R.SWQE_LADDR, BigInt((i % 64) * LEN), true);
      adv.setUint32(e + R.SWQE_LEN, LEN, true);
      adv.setUint32(e + R.SWQE_RKEY, b.key, true);
      adv.setBigUint64(e + R.SWQE_RADDR, BigInt(((i + 7) % 64) * LEN), true);
    }
    if (free) a.c.fw.rdmaRcPostSend(0x11, free);
    now += 1000;
    a.c.fw.rdmaRcPoll(1024, now);
    f.step(now);
    b.c.fw.rdmaRcPoll(1024, now);
    f.step(now);
    a.c.fw.rdmaRcPoll(1024, now);
    // Read the completions in one batch.
    const prod = adv.getUint32(a.blk + R.RCC_CQ_PROD, true), cons = adv.getUint32(a.blk + R.RCC_CQ_CONS, true);
    adv.setUint32(a.blk + R.RCC_CQ_CONS, prod, true);
    return (prod - cons) >>> 0;
  };
  // Reference: the same WRITE ONLY packets built by the wire layer, moved, received and typed (QP in RESET on both cards).
  const c = await side(0x21, 0x22, 1), d = await side(0x22, 0x21, 2);
  c.c.fw.rdmaQpModify(0x21, 0, 0, 0, 0);
  d.c.fw.rdmaQpModify(0x22, 0, 0, 0, 0);
  const g = new Fabric({ seed: 1 });
  g.connect({ card: c.c, port: 0 }, { card: d.c, port: 0 }, { gbps: 1e6, latencyNs: 100 });
  const txd = c.c.fw.rdmaTxDesc();
  c.c.u8.set(c.c.u8.subarray(c.blk + R.RCC_TXD, c.blk + R.RCC_TXD + W.TXD_SIZE), txd);
  const cdv = c.c.dv;
  cdv.setUint8(txd + W.TXD_OPCODE, W.Op.RC_WRITE_ONLY);
  cdv.setUint32(txd + W.TXD_DQP, 0x22, true);
  cdv.setUint32(txd + W.TXD_PAYLOAD, c.c.guests[0]!.base, true);
  cdv.setUint32(txd + W.TXD_LEN, LEN, true);
  cdv.setUint32(txd + W.TXD_ACKREQ, 1, true);
  let now2 = 0;
  const bareRound = () => {
    let n = 0;
    for (let i = 0; i < R.RC_SQ_DEPTH; i++) if (c.c.fw.rdmaTxPacket(txd) !== 0xffffffff) n++;
    now2 += 1000;
    g.step(now2);
    d.c.fw.rdmaRxPoll(1024);
    return n;
  };
  d.c.fw.rdmaSetFlags(W.RCF_NO_LOG);
  b.c.fw.rdmaSetFlags(W.RCF_NO_LOG);
  a.c.fw.rdmaSetFlags(W.RCF_NO_LOG);
  const fig = compare(
    "RC RDMA WRITE 4 KiB, card to card over the fabric (post, segment, ICRC, place into the MR, ACK, complete), both cards on one core", "WRITEs/s", rcRound,
    "the same 4 KiB WRITE ONLY packets through tx → fabric → rx with no transport state", bareRound, o,
  );
  // Only a clean run counts: every WRITE completed successfully and nothing was dropped.
  const errs = { ...a.c.errors(), ...b.c.errors() };
  if (Object.keys(errs).length || a.c.fw.rdmaQpState(0x11) !== 3) throw new Error(`rc-write-4k: the RC run was not clean: ${JSON.stringify(errs)}`);
  return fig;
}
