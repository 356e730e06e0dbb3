// Shared connectors (issue 4 items 1-3): the distributor hands every received command capsule
// of a QP to the QP's connector, which keeps the capsule (its receive buffer is held until the
// command is answered) and the stage of the command's RDMA operations (ConnStage), updated by
// the WQE fetch and the completions. When the link to a controller is lost (nicLinkDown, or
// its heartbeat word stops changing) the connector moves the controller's QPs to a standby
// (the next live controller), discards its unfetched WQEs and re-delivers its in-flight
// commands to the standby, which executes them again; the fetch skips the data WQEs whose
// packets the lost controller already sent, so an RDMA WRITE message goes on with its next
// packet at the next PSN and the host's QP sees one message. With no live controller the
// connector answers every command itself with Namespace Not Ready (DNR clear: retry later).
// Failback (nicLinkUp): new commands go to the home controller at once; its WQEs for the QP
// wait until the standby has posted the responses of the commands it took over.
// Layouts: nic/defs.ts (CE_*, NG_*); regions: memmap.ts NIC_CONN_*.
import { Counter } from "../counters";
import { count } from "../stats";
import { NIC_BASE, NIC_MAX_CTRLS, NIC_MAX_QPS, NIC_RECV_DEPTH, NIC_SQ_DEPTH, NIC_CONN_BASE, NIC_CONN_ENTRY, NIC_CONN_CQES,
  NIC_CONN_PAD, NIC_CONN_END } from "../memmap";
import {
  NG_NCONN, NG_CONN_KEY, NG_SEQ, NG_HB_NS, NG_CTRL_STATE, NG_HB_SEEN, NG_HB_AT, NG_QP_HOME, NG_QP_CONN, NG_QP_QID, NG_QP_FB,
  NG_STATS, NG_QP_OPEN_E, NG_QP_WOPEN, NG_STAGE_KEY, NG_QP_CTRL, NG_NQPS, NG_RIDX_QPN, NG_DOORBELLS, NIC_MAX_CONNS, NIC_LOST, NIC_NO_CTRL, NGF_CONNECTORS, CtrlLink,
  CB_SQ_HEAD, CB_SQ_TAIL, CB_CMD_PROD, CB_CMD_CONS, CB_CMD_DONE, CB_EVT_PROD, CB_EVT_CONS, CB_HEARTBEAT, CMDF_REDELIVERED,
  CE_STATE, CE_OWNER, CE_CID, CE_ID, CE_LEN, CE_SEQ, CE_SENT, CE_PKTS, CE_SKIP, CE_TOTAL, ConnStage, NW_CONN, NW_CID, NW_LEN,
  NW_TOTAL, NicWqeType, RBUF_INDEX_MASK,
} from "./defs";
import { ctrl, flags, qpCtrl, qpRidx, recvBuf, repost, deliver, ctrlOn, WRID_SEND } from "./nic";
import { SQE_CID, CQE_DW0, CQE_DW1, CQE_DW2, CQE_DW3, CQE_STATUS_SHIFT, CQE_SQID_SHIFT, SCT_GENERIC } from "../nvme/spec";
import { mrRegister, mrDeregister } from "../rdma/mr";
import { qpAddr, QpState, QP_STATE, QP_MTU } from "../rdma/qp";
import { rcAddr, rcOn } from "../rdma/rc";
import { rcPostSend, rcTransmit } from "../rdma/req";
import { RCQ_CTRL, RCQ_SQ, RC_SQ_DEPTH, SWQE_SIZE, SWQE_WRID, SWQE_OP, SWQE_LKEY, SWQE_LADDR, SWQE_LEN, SWQE_RKEY, SWQE_RADDR,
  SWQE_IMM, SWF_UNSIGNALED, RCC_SQ_TAIL, RCC_SQ_HEAD, MR_LOCAL_WRITE, WrOp } from "../rdma/rcdefs";

/** Namespace Not Ready (NVMe base 2.0 §4.6.1.2.1, generic SC 82h), DNR clear: no controller can serve it now, a retry may succeed. */
export const S_NS_NOT_READY: u32 = SCT_GENERIC | 0x82;
export const CONN_NONE: u32 = 0xffffffff;
const ENTRIES: u32 = NIC_MAX_QPS * NIC_RECV_DEPTH;
const CQE_BYTES: u32 = 16;
const PAD_BYTES: u32 = 0x1000;
const SQHD_NONE: u32 = 0xffff; // the connector does not track SQ heads (as with SQ flow control disabled)

@inline function entry(i: u32): u32 { return NIC_CONN_BASE + i * NIC_CONN_ENTRY; }
@inline export function connOn(): bool { return (flags() & NGF_CONNECTORS) != 0; }
@inline function stageOf(e: u32): u32 { return <u32>load<u8>(e + CE_STATE); }
@inline export function ctrlLink(k: u32): u32 { return load<u32>(NIC_BASE + NG_CTRL_STATE + k * 4); }
/** Controller k may be given commands and have its WQEs fetched. */
@inline export function ctrlLive(k: u32): bool { return k < NIC_MAX_CTRLS && ctrlOn(k) && ctrlLink(k) == CtrlLink.UP; }

// ---- the two state machines: a controller's link, a command's stage ----

/** CtrlLink transitions: OFF → UP (enabled), UP → LOST (link down, heartbeat), LOST → UP (link back). */
function ctrlMove(k: u32, to: u32): bool {
  const from = ctrlLink(k);
  const ok = (from == CtrlLink.OFF && to == CtrlLink.UP) || (from == CtrlLink.UP && to == CtrlLink.LOST)
    || (from == CtrlLink.LOST && to == CtrlLink.UP) || to == CtrlLink.OFF;
  if (!ok) { count(Counter.err_nic_conn_stage); return false; }
  store<u32>(NIC_BASE + NG_CTRL_STATE + k * 4, to);
  return true;
}

// Allowed ConnStage transitions, bit `to` of ALLOWED[from]. Any stage → DONE (answered, or its
// connection ended); RECEIVED again from any in-flight stage before the response (re-delivery).
const B_DONE: u32 = 1 << ConnStage.DONE, B_RECV: u32 = 1 << ConnStage.RECEIVED, B_DATA: u32 = 1 << ConnStage.DATA;
const B_RI: u32 = 1 << ConnStage.READ_ISSUED, B_RD: u32 = 1 << ConnStage.READ_DONE, B_RESP: u32 = 1 << ConnStage.RESPONSE_PENDING;
@inline function allowed(from: u32): u32 {
  if (from == ConnStage.DONE) return B_RECV;
  if (from == ConnStage.RECEIVED) return B_DONE | B_RECV | B_DATA | B_RI | B_RESP;
  if (from == ConnStage.DATA) return B_DONE | B_RECV | B_DATA | B_RESP;
  if (from == ConnStage.READ_ISSUED) return B_DONE | B_RECV | B_RD;
  if (from == ConnStage.READ_DONE) return B_DONE | B_RECV | B_RESP | B_RI;
  return B_DONE; // RESPONSE_PENDING
}

/** The one transition function of a command's stage; a transition not in ALLOWED is counted and refused. */
function stageMove(e: u32, to: u32): bool {
  if ((allowed(stageOf(e)) & (1 << to)) == 0) { count(Counter.err_nic_conn_stage); return false; }
  store<u8>(e + CE_STATE, <u8>to);
  return true;
}

// ---- setup ----

/** Connector memory cleared and registered (error CQEs and the pad packet are sent from it). 0 or a Counter. */
export function connInit(): u32 {
  memory.fill(NIC_CONN_BASE, 0, NIC_CONN_END - NIC_CONN_BASE);
  store<u32>(NIC_BASE + NG_NCONN, 1);
  memory.fill(NIC_BASE + NG_QP_HOME, <u8>NIC_NO_CTRL, 256);
  const key = mrRegister(-1, NIC_CONN_CQES, NIC_CONN_END - NIC_CONN_CQES, <u64>NIC_CONN_CQES, MR_LOCAL_WRITE);
  if (key == 0) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  store<u32>(NIC_BASE + NG_CONN_KEY, key);
  return 0;
}

export function connDeinit(): void {
  const key = load<u32>(NIC_BASE + NG_CONN_KEY);
  if (key != 0) mrDeregister(key);
}

/** Connectors in use (1..NIC_MAX_CONNS); QPs bound from now on get hash(QPN) % n. */
export function connSetCount(n: u32): u32 {
  if (n == 0 || n > NIC_MAX_CONNS) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  store<u32>(NIC_BASE + NG_NCONN, n);
  return 0;
}

/** Default connector of a QP: a multiplicative hash of its QPN (Knuth), so neighbouring QPNs spread. */
@inline export function connHash(qpn: u32): u32 { return ((qpn * 0x9e3779b1) >> 16) % load<u32>(NIC_BASE + NG_NCONN); }

const KEEP: u32 = 0xff;
/** QP qpn's connector (0xff: keep it) and NVMe-oF queue id (the SQID of responses the connector writes). */
export function connSetQp(qpn: u32, c: u32, qid: u32): u32 {
  if (qpn >= 256 || (c >= load<u32>(NIC_BASE + NG_NCONN) && c != KEEP) || qid > 0xffff) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  if (c != KEEP) store<u8>(NIC_BASE + NG_QP_CONN + qpn, <u8>c);
  store<u16>(NIC_BASE + NG_QP_QID + qpn * 2, <u16>qid);
  return 0;
}

/** Controller k enabled: UP, its heartbeat watched from the next poll. */
export function connCtrlUp(k: u32): void {
  store<u32>(NIC_BASE + NG_CTRL_STATE + k * 4, CtrlLink.OFF);
  ctrlMove(k, CtrlLink.UP);
  store<u32>(NIC_BASE + NG_HB_SEEN + k * 4, load<u32>(ctrl(k) + CB_HEARTBEAT));
  store<f64>(NIC_BASE + NG_HB_AT + k * 8, -1);
}

/** A QP bound to controller k for the first time (or anew): k is its home. */
export function connBound(qpn: u32, k: u32): void {
  store<u8>(NIC_BASE + NG_QP_HOME + qpn, <u8>k);
  store<u8>(NIC_BASE + NG_QP_FB + qpn, 0);
  if (k != NIC_NO_CTRL) store<u8>(NIC_BASE + NG_QP_CONN + qpn, <u8>connHash(qpn));
}

/** Set r's entries forgotten (its QP's connection ended or was made anew): nothing of it will be answered. */
export function connForgetSet(r: u32, qpn: u32): void {
  for (let i: u32 = r * NIC_RECV_DEPTH; i < (r + 1) * NIC_RECV_DEPTH; i++) store<u8>(entry(i) + CE_STATE, <u8>ConnStage.DONE);
  store<u16>(NIC_BASE + NG_QP_OPEN_E + qpn * 2, 0);
}

// ---- distributor side ----

/**
 * A capsule of qpn in receive buffer `id` (len bytes) enters its connector: RECEIVED, owned by
 * controller k (or NIC_LOST: answered by the connector at once). Returns the entry, or CONN_NONE
 * when its entry is still in flight (impossible unless the ring lied: counted).
 */
export function connReceive(qpn: u32, id: u32, len: u32, k: u32): u32 {
  const i = id & RBUF_INDEX_MASK;
  const e = entry(i);
  if (!stageMove(e, ConnStage.RECEIVED)) return CONN_NONE;
  store<u8>(e + CE_OWNER, <u8>k);
  store<u16>(e + CE_CID, load<u16>(recvBuf(i) + SQE_CID));
  store<u32>(e + CE_ID, id);
  store<u32>(e + CE_LEN, len);
  const seq = load<u32>(NIC_BASE + NG_SEQ);
  store<u32>(e + CE_SEQ, seq);
  store<u32>(NIC_BASE + NG_SEQ, seq + 1);
  store<u32>(e + CE_SENT, 0);
  store<u16>(e + CE_PKTS, 0);
  store<u16>(e + CE_SKIP, 0);
  store<u32>(e + CE_TOTAL, 0);
  const st = NIC_BASE + NG_STATS + (<u32>load<u8>(NIC_BASE + NG_QP_CONN + qpn) % NIC_MAX_CONNS) * 4;
  store<u32>(st, load<u32>(st) + 1);
  if (k == NIC_LOST) connAnswer(i, qpn);
  return i;
}

// ---- WQE fetch side ----

/**
 * The entry WQE w of controller k serves: in flight before its response, owned by k, on the
 * WQE's QP, same CID and buffer generation. CONN_NONE otherwise (the WQE is refused).
 */
export function connEntryOf(k: u32, w: u32, qpn: u32): u32 {
  const id = load<u32>(w + NW_CONN);
  const i = id & RBUF_INDEX_MASK;
  if (i >= ENTRIES || i / NIC_RECV_DEPTH != qpRidx(qpn)) return CONN_NONE;
  const e = entry(i);
  const st = stageOf(e);
  if (st == ConnStage.DONE || st == ConnStage.RESPONSE_PENDING || load<u32>(e + CE_ID) != id
    || <u32>load<u8>(e + CE_OWNER) != k || load<u16>(e + CE_CID) != load<u16>(w + NW_CID)) return CONN_NONE;
  return i;
}

/** A data WQE of entry i that the lost controller already sent: skip it (true), counting down. */
export function connSkip(i: u32, type: u32): bool {
  if (type > <u32>NicWqeType.SINGLE) return false;
  const e = entry(i);
  const n = <u32>load<u16>(e + CE_SKIP);
  if (n == 0) return false;
  store<u16>(e + CE_SKIP, <u16>(n - 1));
  count(Counter.nic_conn_skipped);
  return true;
}

/**
 * Failing back: controller k's WQEs for qpn wait while another controller still has a command
 * of qpn before its response (or an open RDMA WRITE message on it). True = wait.
 */
export function connFailbackWait(qpn: u32, k: u32): bool {
  // Only the home controller waits: the standby finishing what it took over must never wait for it.
  if (load<u8>(NIC_BASE + NG_QP_FB + qpn) == 0 || qpCtrl(qpn) != k) return false;
  const open = <u32>load<u16>(NIC_BASE + NG_QP_OPEN_E + qpn * 2);
  if (open != 0 && <u32>load<u8>(entry(open - 1) + CE_OWNER) != k) return true;
  const r = qpRidx(qpn);
  for (let i: u32 = r * NIC_RECV_DEPTH; i < (r + 1) * NIC_RECV_DEPTH; i++) {
    const e = entry(i);
    const st = stageOf(e);
    if (st != ConnStage.DONE && st != ConnStage.RESPONSE_PENDING && <u32>load<u8>(e + CE_OWNER) != k) return true;
  }
  store<u8>(NIC_BASE + NG_QP_FB + qpn, 0);
  return false;
}

/** WQE w (of entry i, type) was posted: the entry's stage follows. */
export function connPosted(i: u32, w: u32, type: u32, qpn: u32): void {
  const e = entry(i);
  if (type == NicWqeType.READ) { stageMove(e, ConnStage.READ_ISSUED); return; }
  if (type == NicWqeType.RESPONSE) { stageMove(e, ConnStage.RESPONSE_PENDING); return; }
  stageMove(e, ConnStage.DATA);
  store<u32>(e + CE_SENT, load<u32>(e + CE_SENT) + load<u32>(w + NW_LEN));
  store<u16>(e + CE_PKTS, load<u16>(e + CE_PKTS) + 1);
  store<u32>(e + CE_TOTAL, load<u32>(w + NW_TOTAL));
  if (type == NicWqeType.INITIAL) store<u16>(NIC_BASE + NG_QP_OPEN_E + qpn * 2, <u16>(i + 1));
  else if (type == NicWqeType.TAIL) store<u16>(NIC_BASE + NG_QP_OPEN_E + qpn * 2, 0);
}

/**
 * A completion of the NIC's work request for entry i, from controller k's WQE of `type`:
 * READ done → READ_DONE; response acknowledged (or failed) → DONE, the receive buffer goes
 * back. Returns false when the completion is stale (the command moved to another controller:
 * no event for k).
 */
export function connCompleted(i: u32, k: u32, type: u32, ok: bool): bool {
  if (i >= ENTRIES) return false;
  const e = entry(i);
  const st = stageOf(e);
  if (type == NicWqeType.READ) {
    if (st != ConnStage.READ_ISSUED || <u32>load<u8>(e + CE_OWNER) != k) { count(Counter.nic_conn_stale_completion); return false; }
    if (ok) stageMove(e, ConnStage.READ_DONE);
    return true;
  }
  if (type == NicWqeType.RESPONSE && st == ConnStage.RESPONSE_PENDING) {
    stageMove(e, ConnStage.DONE);
    const r = i / NIC_RECV_DEPTH;
    if (r < load<u32>(NIC_BASE + NG_NQPS)) repost(load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4), load<u32>(e + CE_ID));
  }
  return true;
}

// ---- failover ----

/** The controller after k (round-robin) that is live, or NIC_LOST. */
function standby(k: u32): u32 {
  for (let j: u32 = 1; j < NIC_MAX_CTRLS; j++) {
    const s = (k + j) % NIC_MAX_CTRLS;
    if (ctrlLive(s)) return s;
  }
  return NIC_LOST;
}

/**
 * Controller k is lost (link down or heartbeat): its unfetched WQEs are discarded, its command
 * ring forgotten; with connectors its QPs move to a standby and its in-flight commands are
 * re-delivered there, else its QPs are unbound (the host must reconnect: baseline).
 */
export function connCtrlLost(k: u32): void {
  if (k >= NIC_MAX_CTRLS || !ctrlMove(k, CtrlLink.LOST)) return;
  const cb = ctrl(k);
  const head = load<u32>(cb + CB_SQ_HEAD), tail = load<u32>(cb + CB_SQ_TAIL);
  const left = tail - head;
  if (left <= NIC_SQ_DEPTH) for (let n: u32 = 0; n < left; n++) count(Counter.nic_conn_wqes_discarded);
  store<u32>(cb + CB_SQ_HEAD, tail);
  store<u32>(NIC_BASE + NG_DOORBELLS, load<u32>(NIC_BASE + NG_DOORBELLS) & ~(1 << k));
  const prod = load<u32>(cb + CB_CMD_PROD);
  store<u32>(cb + CB_CMD_DONE, prod);
  store<u32>(cb + CB_CMD_CONS, prod);
  const nsets = load<u32>(NIC_BASE + NG_NQPS);
  if (!connOn()) {
    for (let r: u32 = 0; r < nsets; r++) {
      const qpn = load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4);
      if (qpCtrl(qpn) == k) store<u8>(NIC_BASE + NG_QP_CTRL + qpn, <u8>NIC_NO_CTRL);
    }
    return;
  }
  count(Counter.nic_conn_takeovers);
  const s = standby(k);
  for (let r: u32 = 0; r < nsets; r++) {
    const qpn = load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4);
    if (qpCtrl(qpn) == k) store<u8>(NIC_BASE + NG_QP_CTRL + qpn, <u8>s);
  }
  for (let r: u32 = 0; r < nsets; r++) redeliverSet(r, k);
}

/** Re-deliver set r's in-flight commands owned by k to its QP's controller: the open message first, then by arrival. */
function redeliverSet(r: u32, k: u32): void {
  const qpn = load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4);
  const to = qpCtrl(qpn);
  if (to == NIC_NO_CTRL) return;
  const open = <u32>load<u16>(NIC_BASE + NG_QP_OPEN_E + qpn * 2);
  if (open != 0 && <u32>load<u8>(entry(open - 1) + CE_OWNER) == k) redeliver(open - 1, qpn, to);
  const now = load<u32>(NIC_BASE + NG_SEQ);
  for (;;) {
    let best: u32 = CONN_NONE, age: u32 = 0;
    for (let i: u32 = r * NIC_RECV_DEPTH; i < (r + 1) * NIC_RECV_DEPTH; i++) {
      const e = entry(i);
      const st = stageOf(e);
      if (st == ConnStage.DONE || st == ConnStage.RESPONSE_PENDING || <u32>load<u8>(e + CE_OWNER) != k) continue;
      const a = now - load<u32>(e + CE_SEQ);
      if (best == CONN_NONE || a > age) { best = i; age = a; }
    }
    if (best == CONN_NONE) return;
    redeliver(best, qpn, to);
  }
}

/** Entry i to controller `to` (or answered with an error when none is live), telling it how many data packets went out. */
function redeliver(i: u32, qpn: u32, to: u32): void {
  const e = entry(i);
  const skip: u32 = stageOf(e) == ConnStage.DATA ? <u32>load<u16>(e + CE_PKTS) : 0;
  stageMove(e, ConnStage.RECEIVED);
  store<u8>(e + CE_OWNER, <u8>to);
  count(Counter.nic_conn_redelivered);
  if (to == NIC_LOST) { connAnswer(i, qpn); return; }
  store<u16>(e + CE_SKIP, <u16>skip);
  if (!deliver(to, qpn, load<u32>(e + CE_ID), load<u32>(e + CE_LEN), CMDF_REDELIVERED, skip)) {
    store<u8>(e + CE_OWNER, <u8>NIC_LOST); // its ring is full: the host gets a retryable error rather than nothing
    connAnswer(i, qpn);
  }
}

/** Controller k's link is back: it starts with empty rings; its home QPs come back to it (failback). */
export function connCtrlBack(k: u32): u32 {
  if (k >= NIC_MAX_CTRLS || !ctrlOn(k) || ctrlLink(k) != CtrlLink.LOST) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  const cb = ctrl(k);
  store<u32>(cb + CB_SQ_HEAD, 0); store<u32>(cb + CB_SQ_TAIL, 0);
  store<u32>(cb + CB_CMD_PROD, 0); store<u32>(cb + CB_CMD_CONS, 0); store<u32>(cb + CB_CMD_DONE, 0);
  store<u32>(cb + CB_EVT_PROD, 0); store<u32>(cb + CB_EVT_CONS, 0);
  ctrlMove(k, CtrlLink.UP);
  store<u32>(NIC_BASE + NG_HB_SEEN + k * 4, load<u32>(cb + CB_HEARTBEAT));
  store<f64>(NIC_BASE + NG_HB_AT + k * 8, -1);
  const nsets = load<u32>(NIC_BASE + NG_NQPS);
  for (let r: u32 = 0; r < nsets; r++) {
    const qpn = load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4);
    const cur = qpCtrl(qpn);
    if (cur == NIC_NO_CTRL) continue;
    if (<u32>load<u8>(NIC_BASE + NG_QP_HOME + qpn) == k || cur == NIC_LOST) {
      if (cur != k) {
        store<u8>(NIC_BASE + NG_QP_CTRL + qpn, <u8>k);
        store<u8>(NIC_BASE + NG_QP_FB + qpn, 1);
        count(Counter.nic_conn_failbacks);
      }
    }
  }
  // Commands the connector still owes an answer it could not send yet: k serves them.
  for (let r: u32 = 0; r < nsets; r++) {
    const qpn = load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4);
    if (qpCtrl(qpn) != k) continue;
    for (let i: u32 = r * NIC_RECV_DEPTH; i < (r + 1) * NIC_RECV_DEPTH; i++) {
      const e = entry(i);
      if (stageOf(e) == ConnStage.RECEIVED && <u32>load<u8>(e + CE_OWNER) == NIC_LOST) redeliver(i, qpn, k);
    }
  }
  return 0;
}

/**
 * Heartbeats at virtual time now: a live controller whose CB_HEARTBEAT has not changed for
 * NG_HB_NS is lost. The clock starts at the first poll that finds the word unchanged: a
 * controller steps after the NIC's poll in a round, so only from that poll on has it missed a
 * chance to step (an idle stretch of virtual time between rounds does not look like a loss).
 */
export function connHeartbeats(now: f64): void {
  const limit = load<f64>(NIC_BASE + NG_HB_NS);
  if (limit <= 0) return;
  for (let k: u32 = 0; k < NIC_MAX_CTRLS; k++) {
    if (!ctrlLive(k)) continue;
    const hb = load<u32>(ctrl(k) + CB_HEARTBEAT);
    const at = NIC_BASE + NG_HB_AT + k * 8;
    if (hb != load<u32>(NIC_BASE + NG_HB_SEEN + k * 4)) {
      store<u32>(NIC_BASE + NG_HB_SEEN + k * 4, hb);
      store<f64>(at, -1);
    } else if (load<f64>(at) < 0) store<f64>(at, now);
    else if (now - load<f64>(at) > limit) {
      count(Counter.nic_heartbeat_lost);
      connCtrlLost(k);
    }
  }
}

/**
 * Work requests still on the NIC QPs' send queues (posted, not completed) that read controller
 * k's staging window: go-back-N may send them again, so k must not reuse its window (start
 * anew) until this is 0.
 */
export function connCtrlBusy(k: u32): u32 {
  if (k >= NIC_MAX_CTRLS) return 0;
  const key = load<u32>(NIC_BASE + NG_STAGE_KEY + k * 4);
  let n: u32 = 0;
  const nsets = load<u32>(NIC_BASE + NG_NQPS);
  for (let r: u32 = 0; r < nsets; r++) {
    const qpn = load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4);
    if (!rcOn(qpn)) continue;
    const c = rcAddr(qpn);
    const tail = load<u32>(c + RCC_SQ_TAIL);
    let h = load<u32>(c + RCC_SQ_HEAD);
    if (tail - h > RC_SQ_DEPTH) continue;
    for (; h != tail; h++) if (load<u32>(c - RCQ_CTRL + RCQ_SQ + (h % RC_SQ_DEPTH) * SWQE_SIZE + SWQE_LKEY) == key) n++;
  }
  return n;
}

// ---- the connector's own answers (no live controller) ----

let owed: u32 = 0; // entries owned by NIC_LOST whose answer found no room yet

/**
 * Answer entry i of qpn with Namespace Not Ready: first close an RDMA WRITE message the lost
 * controller left open (its remaining packets from the zeroed pad: the host's buffer content
 * is undefined for a failed read), then SEND the response capsule. No room on the QP's send
 * queue: retried by connRetry.
 */
function connAnswer(i: u32, qpn: u32): void {
  const e = entry(i);
  if (!rcOn(qpn)) { stageMove(e, ConnStage.DONE); return; }
  const q = qpAddr(qpn);
  const mtu = load<u32>(q + QP_MTU);
  const c = rcAddr(qpn);
  const open = <u32>load<u16>(NIC_BASE + NG_QP_OPEN_E + qpn * 2) == i + 1;
  const total = load<u32>(e + CE_TOTAL);
  let left: u32 = open ? total - load<u32>(e + CE_SENT) : 0;
  const need: u32 = (open && mtu > 0 ? (left + mtu - 1) / mtu : 0) + 1;
  if (RC_SQ_DEPTH - (load<u32>(c + RCC_SQ_TAIL) - load<u32>(c + RCC_SQ_HEAD)) < need) { owed++; return; }
  const key = load<u32>(NIC_BASE + NG_CONN_KEY);
  while (left > 0) {
    const len = min(left, min(mtu, PAD_BYTES));
    left -= len;
    postOne(qpn, c, WrOp.WRITE_PKT, left == 0 ? 3 : 2, key, NIC_CONN_PAD, len, total, false, 0); // Pos LAST / MIDDLE
  }
  if (open) { store<u16>(NIC_BASE + NG_QP_OPEN_E + qpn * 2, 0); store<u8>(NIC_BASE + NG_QP_WOPEN + qpn, 0); }
  const cqe = NIC_CONN_CQES + i * CQE_BYTES;
  store<u32>(cqe + CQE_DW0, 0);
  store<u32>(cqe + CQE_DW1, 0);
  store<u32>(cqe + CQE_DW2, SQHD_NONE | (<u32>load<u16>(NIC_BASE + NG_QP_QID + qpn * 2) << CQE_SQID_SHIFT));
  store<u32>(cqe + CQE_DW3, <u32>load<u16>(e + CE_CID) | (S_NS_NOT_READY << CQE_STATUS_SHIFT));
  postOne(qpn, c, WrOp.SEND, 0, key, cqe, CQE_BYTES, CQE_BYTES, true, WRID_SEND | (<u64>(i + 1) << 48) | (<u64>NicWqeType.RESPONSE << 40) | (<u64>0xff << 32));
  stageMove(e, ConnStage.RESPONSE_PENDING);
  count(Counter.nic_conn_error_responses);
}

function postOne(qpn: u32, c: u32, op: u32, pos: u32, key: u32, addr: u32, len: u32, total: u32, signaled: bool, wrid: u64): void {
  const s = c - RCQ_CTRL + RCQ_SQ + (load<u32>(c + RCC_SQ_TAIL) % RC_SQ_DEPTH) * SWQE_SIZE;
  store<u64>(s + SWQE_WRID, wrid);
  store<u32>(s + SWQE_OP, op | (pos << 8) | ((signaled ? 0 : SWF_UNSIGNALED) << 16));
  store<u32>(s + SWQE_LKEY, key);
  store<u64>(s + SWQE_LADDR, <u64>addr);
  store<u32>(s + SWQE_LEN, len);
  store<u32>(s + SWQE_RKEY, 0);
  store<u64>(s + SWQE_RADDR, 0);
  store<u32>(s + SWQE_IMM, total);
  rcPostSend(qpn, 1);
  const q = qpAddr(qpn);
  if (load<u32>(q + QP_STATE) == QpState.RTS) rcTransmit(qpn, c, q);
}

/** Answers owed (no send queue room when due): try them again. */
export function connRetry(): void {
  if (owed == 0) return;
  owed = 0;
  const nsets = load<u32>(NIC_BASE + NG_NQPS);
  for (let r: u32 = 0; r < nsets; r++) {
    const qpn = load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4);
    for (let i: u32 = r * NIC_RECV_DEPTH; i < (r + 1) * NIC_RECV_DEPTH; i++) {
      const e = entry(i);
      if (stageOf(e) == ConnStage.RECEIVED && <u32>load<u8>(e + CE_OWNER) == NIC_LOST) connAnswer(i, qpn);
    }
  }
}

/** Stage of the in-flight command (qpn, cid), or 0xff when the connector holds none (tests, tools). */
export function connStageOf(qpn: u32, cid: u32): u32 {
  const r = qpRidx(qpn);
  if (r >= NIC_MAX_QPS) return 0xff;
  for (let i: u32 = r * NIC_RECV_DEPTH; i < (r + 1) * NIC_RECV_DEPTH; i++) {
    const e = entry(i);
    if (stageOf(e) != ConnStage.DONE && <u32>load<u16>(e + CE_CID) == cid) return stageOf(e);
  }
  return 0xff;
}
