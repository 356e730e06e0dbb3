// Exported entry points of the storage-side NIC (WQE fetch, command distribution, DIF):
// setup calls at configuration time, then one nicPoll (or rdmaPoll, which includes it) per
// round. Layouts in nic/defs.ts; what each does in nic/nic.ts.
import { nicInit as init, nicSetFlags as setFlags, nicCtrlEnable as ctrlEnable, nicBindQp as bindQp, nicDoorbell as doorbell,
  nicPoll as poll } from "./nic";

/** Clear the NIC and switch it on with NGF_* flags; registers the target QPs' receive buffers. 0 or a Counter. */
export function nicInit(flags: u32): u32 { return init(flags); }
/** NGF_* flags at run time (e.g. the tail fast path switch). */
export function nicSetFlags(flags: u32): void { setFlags(flags); }
/** Controller k's rings usable; its staging window registered. Returns the window's key, or 0. */
export function nicCtrlEnable(k: u32): u32 { return ctrlEnable(k); }
/** Target QP qpn's commands go to controller k (0xff: to none); posts its receive buffers. 0 or a Counter. */
export function nicBindQp(qpn: u32, k: u32): u32 { return bindQp(qpn, k); }
/** Controller k wrote WQEs and moved CB_SQ_TAIL. */
export function nicDoorbell(k: u32): void { doorbell(k); }
/** One NIC round at virtual time now (ns), up to budget WQEs fetched. Returns the work done (0 = idle). */
export function nicPoll(budget: u32, now: f64): u32 { return poll(budget, now); }

// ---- shared connectors and failover (nic/connector.ts) ----
import { connCtrlLost, connCtrlBack, connSetCount, connSetQp, connStageOf, ctrlLink, connCtrlBusy } from "./connector";
import { NG_HB_NS, NIC_NO_CTRL as NO_CTRL } from "./defs";

/** Connectors in use, 1..NIC_MAX_CONNS (QPs bound later get hash(QPN) % n). 0 or a Counter. */
export function nicConnectors(n: u32): u32 { return connSetCount(n); }
/** QP qpn's connector c and its NVMe-oF queue id (SQID of the answers the connector writes itself). 0 or a Counter. */
export function nicQpConnector(qpn: u32, c: u32, qid: u32): u32 { return connSetQp(qpn, c, qid); }
/** A controller whose heartbeat word has not changed for ns of virtual time is lost (0: no detection). */
export function nicSetHeartbeat(ns: f64): void { store<f64>(NIC_BASE + NG_HB_NS, ns); }
/** The link to controller k dropped: failover (connectors) or its QPs unbound (baseline). */
export function nicLinkDown(k: u32): void { if (k < NIC_MAX_CTRLS) connCtrlLost(k); }
/** The link to controller k is back (its rings start empty): failback. 0 or a Counter. */
export function nicLinkUp(k: u32): u32 { return connCtrlBack(k); }
/** CtrlLink of controller k (nic/defs.ts). */
export function nicCtrlLink(k: u32): u32 { return k < NIC_MAX_CTRLS ? ctrlLink(k) : 0; }
/** Work requests on the NIC's QPs that still read controller k's staging window (k may start anew when 0). */
export function nicCtrlBusy(k: u32): u32 { return connCtrlBusy(k); }
/** ConnStage of the in-flight command (qpn, cid) in its connector, 0xff when none. */
export function nicConnStage(qpn: u32, cid: u32): u32 { return connStageOf(qpn, cid); }

// ---- benchmark kernel ----
import { NIC_BASE, NIC_CTRLS, NIC_CTRL_SIZE, NIC_MAX_CTRLS, NIC_SQ_DEPTH, NET_TX_CTRL, COUNTERS_BASE } from "../memmap";
import { Counter } from "../counters";
import { NG_NQPS, NG_RIDX_QPN, CB_ON, CB_SQ_HEAD, CB_SQ_TAIL } from "./defs";
import { qpAddr, qpAcked, QP_SQ_PSN, QP_SQ_UNA } from "../rdma/qp";
import { rcService } from "../rdma/req";
import { PSN_MASK } from "../rdma/wire";

/**
 * WQE fetch + packet build, `rounds` NIC rounds of up to `budget` WQEs, playing everything
 * around the NIC inside the firmware: each controller's send queue is kept full by moving its
 * tail over the WQEs already in the ring (they repeat with the ring), the host's consumption of
 * the TX ring and its ACKs (every NIC QP acknowledged up to its last PSN after each round).
 * Returns the WQEs fetched.
 */
export function benchNicFetch(rounds: u32, budget: u32): u32 {
  const c0 = load<u64>(COUNTERS_BASE + 8 * <u32>Counter.nic_wqes_fetched);
  let now: f64 = 0;
  for (let r: u32 = 0; r < rounds; r++) {
    store<u32>(NET_TX_CTRL + 4, load<u32>(NET_TX_CTRL));
    for (let k: u32 = 0; k < NIC_MAX_CTRLS; k++) {
      const cb = NIC_CTRLS + k * NIC_CTRL_SIZE;
      if (load<u32>(cb + CB_ON) == 0) continue;
      store<u32>(cb + CB_SQ_TAIL, load<u32>(cb + CB_SQ_HEAD) + NIC_SQ_DEPTH);
      doorbell(k);
    }
    now += 1000;
    poll(budget, now);
    const n = load<u32>(NIC_BASE + NG_NQPS);
    for (let i: u32 = 0; i < n; i++) {
      const qpn = load<u32>(NIC_BASE + NG_RIDX_QPN + i * 4);
      const q = qpAddr(qpn);
      const psn = load<u32>(q + QP_SQ_PSN);
      if (load<u32>(q + QP_SQ_UNA) != psn) { qpAcked(qpn, (psn - 1) & PSN_MASK); rcService(qpn); }
    }
  }
  return <u32>(load<u64>(COUNTERS_BASE + 8 * <u32>Counter.nic_wqes_fetched) - c0);
}

import { reap } from "./nic";
import { NG_RIDX_GEN, CB_CMD_PROD, CB_CMD_CONS, CB_CMD_DONE, CE_STATE, ConnStage } from "./defs";
import { NIC_RECV_DEPTH, NIC_CONN_BASE, NIC_CONN_ENTRY } from "../memmap";
import { rcAddr } from "../rdma/rc";
import { RCQ_CTRL, RCQ_CQ, RC_CQ_DEPTH, CQE_SIZE, CQE_WRID, CQE_STATUS, CQE_OPCODE, CQE_BYTE_LEN, RCC_CQ_PROD, WcOp, WcStatus } from "../rdma/rcdefs";

/**
 * Parser + distributor + shared connector, `rounds` batches. Per batch each bound QP gets a
 * received SEND (a 64-byte command capsule) in every one of its NIC_RECV_DEPTH buffers, as
 * receive completions in its RC completion queue; reap() (the NIC's receive path, as nicPoll
 * runs it) types each completion, attributes it to its QP, checks it, records it in the QP's
 * connector (RECEIVED, CID, arrival order) and writes the command entry into the owning
 * controller's ring. Played inside the kernel: the controllers take every entry and every
 * command is answered (its entry DONE; buffers are not reposted: the RC receive queue is the
 * RC engine's, not this path's). Returns the messages distributed.
 */
export function benchConnector(rounds: u32): u32 {
  const c0 = load<u64>(COUNTERS_BASE + 8 * <u32>Counter.nic_commands);
  const n = load<u32>(NIC_BASE + NG_NQPS);
  for (let r: u32 = 0; r < rounds; r++) {
    for (let s: u32 = 0; s < n; s++) {
      const qpn = load<u32>(NIC_BASE + NG_RIDX_QPN + s * 4);
      const c = rcAddr(qpn);
      const gen = load<u32>(NIC_BASE + NG_RIDX_GEN + s * 4) & 0xffff;
      const prod = load<u32>(c + RCC_CQ_PROD);
      for (let i: u32 = 0; i < NIC_RECV_DEPTH; i++) {
        const e = c - RCQ_CTRL + RCQ_CQ + ((prod + i) % RC_CQ_DEPTH) * CQE_SIZE;
        store<u64>(e + CQE_WRID, <u64>((s * NIC_RECV_DEPTH + i) | (gen << 16)));
        store<u32>(e + CQE_STATUS, WcStatus.SUCCESS);
        store<u32>(e + CQE_OPCODE, WcOp.RECV);
        store<u32>(e + CQE_BYTE_LEN, 64);
      }
      store<u32>(c + RCC_CQ_PROD, prod + NIC_RECV_DEPTH);
      reap(qpn);
    }
    for (let k: u32 = 0; k < NIC_MAX_CTRLS; k++) {
      const cb = NIC_CTRLS + k * NIC_CTRL_SIZE;
      const p = load<u32>(cb + CB_CMD_PROD);
      store<u32>(cb + CB_CMD_CONS, p);
      store<u32>(cb + CB_CMD_DONE, p);
    }
    for (let i: u32 = 0; i < n * NIC_RECV_DEPTH; i++) store<u8>(NIC_CONN_BASE + i * NIC_CONN_ENTRY + CE_STATE, <u8>ConnStage.DONE);
  }
  return <u32>(load<u64>(COUNTERS_BASE + 8 * <u32>Counter.nic_commands) - c0);
}
