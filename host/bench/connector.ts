// Storage-side NIC, parser + distributor + shared connector (issue 4 item 1): received SEND
// messages (64-byte command capsules) of 8 QPs on 4 controllers, as receive completions in the
// QPs' RC completion queues; the firmware's receive path types each one, attributes it to its
// QP, records it in the QP's connector and hands it to the owning controller's command ring
// (benchConnector). Beside it, the same steps in plain TypeScript over the same card memory
// (DataView), in the same run.
import { Card } from "../card.js";
import * as M from "../../assembly/memmap.js";
import * as W from "../../assembly/rdma/wire.js";
import * as R from "../../assembly/rdma/rcdefs.js";
import * as N from "../../assembly/nic/defs.js";
import { compare, type BenchOptions, type Figure } from "./harness.js";

const CTRLS = 4;
const QPS = 8; // two per controller
const ROUNDS = 64; // per sample call: ROUNDS × QPS × NIC_RECV_DEPTH messages
const SQE_CID = 2;

/** A NIC card with connectors on, QPS RC QPs in RTS bound round-robin to CTRLS controllers, each receive buffer holding a capsule. */
export async function connectorBenchCard(): Promise<Card> {
  const c = await Card.create({ guests: [{ ramBytes: 1 << 16 }], disks: [] });
  const fw = c.fw;
  if (fw.nicInit(N.NGF_CONNECTORS) !== 0) throw new Error("connector bench: nicInit");
  fw.nicSetHeartbeat(0);
  if (fw.nicConnectors(4) !== 0) throw new Error("connector bench: nicConnectors");
  for (let k = 0; k < CTRLS; k++) if (fw.nicCtrlEnable(k) === 0) throw new Error("connector bench: nicCtrlEnable");
  for (let i = 0; i < QPS; i++) {
    const qpn = 0x20 + i;
    fw.rdmaQpModify(qpn, 1, W.Transport.RC, 0, 0);
    fw.rdmaQpModify(qpn, 2, 1024, 0x40 + i, 0);
    fw.rdmaQpModify(qpn, 3, 7, 7, 0);
    if (fw.rdmaRcEnable(qpn, 1e9, 16, 1, R.RC_SQ_DEPTH) !== 0) throw new Error("connector bench: rcEnable");
    if (fw.nicBindQp(qpn, i % CTRLS) !== 0) throw new Error("connector bench: nicBindQp");
  }
  for (let b = 0; b < QPS * M.NIC_RECV_DEPTH; b++) {
    const p = M.NIC_RECV_BASE + b * M.NIC_RECV_SLOT;
    c.u8.fill(0, p, p + 64);
    c.dv.setUint8(p, 0x02); // Read
    c.dv.setUint16(p + SQE_CID, b % M.NIC_RECV_DEPTH, true);
  }
  return c;
}

/**
 * The same steps in TypeScript: per QP, NIC_RECV_DEPTH receive completions written, then each
 * read back, checked (opcode, status, buffer id and generation, length), its QP's controller
 * looked up and checked live, its connector entry moved DONE → RECEIVED and filled, the command
 * entry written, the ring's producer moved; then the entries taken and answered.
 */
export function tsDistribute(c: Card, rounds: number): number {
  const dv = c.dv, nb = M.NIC_BASE;
  const n = dv.getUint32(nb + N.NG_NQPS, true);
  let msgs = 0, seq = dv.getUint32(nb + N.NG_SEQ, true);
  for (let r = 0; r < rounds; r++) {
    for (let s = 0; s < n; s++) {
      const qpn = dv.getUint32(nb + N.NG_RIDX_QPN + s * 4, true);
      const blk = c.fw.rdmaRcBlock(qpn), cq = blk - R.RCQ_CTRL + R.RCQ_CQ;
      const gen = dv.getUint32(nb + N.NG_RIDX_GEN + s * 4, true) & 0xffff;
      let prod = dv.getUint32(blk + R.RCC_CQ_PROD, true);
      for (let i = 0; i < M.NIC_RECV_DEPTH; i++) {
        const e = cq + ((prod + i) % R.RC_CQ_DEPTH) * R.CQE_SIZE;
        dv.setBigUint64(e + R.CQE_WRID, BigInt((s * M.NIC_RECV_DEPTH + i) | (gen << 16)), true);
        dv.setUint32(e + R.CQE_STATUS, R.WcStatus.SUCCESS, true);
        dv.setUint32(e + R.CQE_OPCODE, R.WcOp.RECV, true);
        dv.setUint32(e + R.CQE_BYTE_LEN, 64, true);
      }
      prod = (prod + M.NIC_RECV_DEPTH) >>> 0;
      let cons = dv.getUint32(blk + R.RCC_CQ_CONS, true);
      for (; cons !== prod; cons = (cons + 1) >>> 0) {
        const e = cq + (cons % R.RC_CQ_DEPTH) * R.CQE_SIZE;
        if (dv.getUint32(e + R.CQE_OPCODE, true) !== R.WcOp.RECV || dv.getUint32(e + R.CQE_STATUS, true) !== 0) continue;
        const id = Number(dv.getBigUint64(e + R.CQE_WRID, true)), len = dv.getUint32(e + R.CQE_BYTE_LEN, true);
        const idx = id & N.RBUF_INDEX_MASK, set = Math.floor(idx / M.NIC_RECV_DEPTH);
        if (set >= n || id >>> 16 !== (dv.getUint32(nb + N.NG_RIDX_GEN + set * 4, true) & 0xffff) || len < 64) continue;
        const k = dv.getUint8(nb + N.NG_QP_CTRL + qpn);
        if (k >= M.NIC_MAX_CTRLS || dv.getUint32(nb + N.NG_CTRL_STATE + k * 4, true) !== N.CtrlLink.UP) continue;
        const cb = M.NIC_CTRLS + k * M.NIC_CTRL_SIZE, p = dv.getUint32(cb + N.CB_CMD_PROD, true);
        if (p - dv.getUint32(cb + N.CB_CMD_DONE, true) >= M.NIC_CMD_DEPTH) continue;
        const ce = M.NIC_CONN_BASE + idx * M.NIC_CONN_ENTRY, buf = M.NIC_RECV_BASE + idx * M.NIC_RECV_SLOT;
        if (dv.getUint8(ce + N.CE_STATE) !== N.ConnStage.DONE) continue;
        dv.setUint8(ce + N.CE_STATE, N.ConnStage.RECEIVED);
        dv.setUint8(ce + N.CE_OWNER, k);
        dv.setUint16(ce + N.CE_CID, dv.getUint16(buf + SQE_CID, true), true);
        dv.setUint32(ce + N.CE_ID, id, true);
        dv.setUint32(ce + N.CE_LEN, len, true);
        dv.setUint32(ce + N.CE_SEQ, seq++, true);
        dv.setUint32(ce + N.CE_SENT, 0, true);
        dv.setUint32(ce + N.CE_PKTS, 0, true); // CE_PKTS and CE_SKIP
        dv.setUint32(ce + N.CE_TOTAL, 0, true);
        const st = nb + N.NG_STATS + (dv.getUint8(nb + N.NG_QP_CONN + qpn) % N.NIC_MAX_CONNS) * 4;
        dv.setUint32(st, dv.getUint32(st, true) + 1, true);
        const ring = cb + N.NC_CMD + (p % M.NIC_CMD_DEPTH) * N.CMD_SIZE;
        dv.setUint32(ring + N.CMD_QPN, qpn, true);
        dv.setUint32(ring + N.CMD_CAPSULE, buf, true);
        dv.setUint32(ring + N.CMD_LEN, len, true);
        dv.setUint32(ring + N.CMD_RECV_SLOT, id, true);
        dv.setUint32(ring + N.CMD_FLAGS, 0, true);
        dv.setUint32(ring + N.CMD_SKIP, 0, true);
        dv.setUint32(cb + N.CB_CMD_PROD, p + 1, true);
        msgs++;
      }
      dv.setUint32(blk + R.RCC_CQ_PROD, prod, true);
      dv.setUint32(blk + R.RCC_CQ_CONS, cons, true);
    }
    for (let k = 0; k < M.NIC_MAX_CTRLS; k++) {
      const cb = M.NIC_CTRLS + k * M.NIC_CTRL_SIZE, p = dv.getUint32(cb + N.CB_CMD_PROD, true);
      dv.setUint32(cb + N.CB_CMD_CONS, p, true);
      dv.setUint32(cb + N.CB_CMD_DONE, p, true);
    }
    for (let i = 0; i < n * M.NIC_RECV_DEPTH; i++) dv.setUint8(M.NIC_CONN_BASE + i * M.NIC_CONN_ENTRY + N.CE_STATE, N.ConnStage.DONE);
  }
  dv.setUint32(nb + N.NG_SEQ, seq, true);
  return msgs;
}

export async function benchConnector(o: BenchOptions): Promise<Figure> {
  const c = await connectorBenchCard();
  const fig = compare(
    `storage-side NIC: parser + distributor + shared connector (${QPS} QPs on ${CTRLS} controllers, 64-byte command capsules)`, "messages/s",
    () => c.fw.benchConnector(ROUNDS),
    "the same steps in plain TypeScript (DataView over the same card memory)",
    () => tsDistribute(c, ROUNDS),
    o,
  );
  const errs = c.errors();
  if (Object.keys(errs).length) throw new Error(`connector: the run was not clean: ${JSON.stringify(errs)}`);
  return fig;
}
