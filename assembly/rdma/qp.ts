// RC/UD queue pairs: the state machine (IBTA vol. 1 §10.3.1: RESET, INIT, RTR, RTS, ERR; one
// transition function) and the PSN bookkeeping of both directions. One QP_ENTRY_SIZE entry per
// QP number below MAX_QPS in the QP table (memmap.ts).
import { QP_TABLE_BASE, QP_ENTRY_SIZE, MAX_QPS } from "../memmap";
import { Counter } from "../counters";
import { count } from "../stats";
import { Transport, PSN_MASK, PMTU_MIN, PMTU_MAX } from "./wire";
import { SEQ_EPSN, SEQ_CLASS, psnDiff } from "./seq";

export enum QpState { RESET = 0, INIT = 1, RTR = 2, RTS = 3, ERR = 4 }

// Entry layout (u32 fields).
export const QP_STATE: u32 = 0; // QpState
export const QP_TRANSPORT: u32 = 4; // Transport (RC or UD)
export const QP_MTU: u32 = 8; // path MTU, bytes
export const QP_DEST_QP: u32 = 12; // remote QP number (RC)
export const QP_RQ: u32 = 16; // responder stream: SEQ_EPSN, SEQ_CLASS (seq.ts) at +16, +20
export const QP_RQ_MSN: u32 = 24; // messages completed as responder (AETH MSN)
export const QP_RSP: u32 = 28; // completer stream for read responses: SEQ_EPSN, SEQ_CLASS at +28, +32
export const QP_SQ_PSN: u32 = 36; // next PSN the requester sends
export const QP_SQ_UNA: u32 = 40; // oldest PSN not yet acknowledged
export const QP_RETRY_CNT: u32 = 44; // retries allowed on timeout / NAK (3 bits, §9.7.6.1.3)
export const QP_RETRIES_LEFT: u32 = 48;
export const QP_RNR_RETRY: u32 = 52;
export const QP_ACK_PENDING: u32 = 56; // packets received since the last ACK we sent (coalescing)
export const QP_QKEY: u32 = 60; // UD Q_Key

@inline export function qpAddr(qpn: u32): u32 { return QP_TABLE_BASE + qpn * QP_ENTRY_SIZE; }
@inline export function qpState(qpn: u32): u32 { return qpn < MAX_QPS ? load<u32>(qpAddr(qpn) + QP_STATE) : QpState.RESET; }

/** May a QP in state `from` move to `to`? (IBTA §10.3.1 figure 124, without SQD/SQE.) */
export function qpTransitionAllowed(from: u32, to: u32): bool {
  if (to == QpState.RESET || to == QpState.ERR) return true; // from any state
  if (to == QpState.INIT) return from == QpState.RESET || from == QpState.INIT;
  if (to == QpState.RTR) return from == QpState.INIT;
  if (to == QpState.RTS) return from == QpState.RTR || from == QpState.RTS;
  return false;
}

/**
 * The one transition function. RESET clears the entry; INIT sets transport and (UD) Q_Key
 * from `a`/`b`; RTR sets the path MTU (a), the remote QP (b) and the expected PSN (c); RTS sets
 * the first send PSN (c) and the retry count (a) and RNR retry (b). Returns 0, or the Counter
 * of the refusal (err_rdma_bad_qp for a bad QP number or transition, err_rdma_tx_bad_desc for
 * bad attributes); every transition is counted.
 */
export function qpModify(qpn: u32, to: u32, a: u32, b: u32, c: u32): u32 {
  if (qpn >= MAX_QPS || to > <u32>QpState.ERR) { count(Counter.err_rdma_bad_qp); return Counter.err_rdma_bad_qp; }
  const q = qpAddr(qpn);
  if (!qpTransitionAllowed(load<u32>(q + QP_STATE), to)) { count(Counter.err_rdma_bad_qp); return Counter.err_rdma_bad_qp; }
  if (to == QpState.RESET) {
    memory.fill(q, 0, QP_ENTRY_SIZE);
  } else if (to == QpState.INIT) {
    if (a != Transport.RC && a != Transport.UD) { count(Counter.err_rdma_tx_bad_desc); return Counter.err_rdma_tx_bad_desc; }
    store<u32>(q + QP_TRANSPORT, a);
    store<u32>(q + QP_QKEY, b);
  } else if (to == QpState.RTR) {
    if (a < PMTU_MIN || a > PMTU_MAX || popcnt(a) != 1) { count(Counter.err_rdma_tx_bad_desc); return Counter.err_rdma_tx_bad_desc; }
    store<u32>(q + QP_MTU, a);
    store<u32>(q + QP_DEST_QP, b);
    store<u32>(q + QP_RQ + SEQ_EPSN, c & PSN_MASK);
    store<u32>(q + QP_RQ + SEQ_CLASS, 0);
  } else if (to == QpState.RTS) {
    if (load<u32>(q + QP_STATE) == QpState.RTR) {
      store<u32>(q + QP_SQ_PSN, c & PSN_MASK);
      store<u32>(q + QP_SQ_UNA, c & PSN_MASK);
      store<u32>(q + QP_RSP + SEQ_EPSN, c & PSN_MASK);
      store<u32>(q + QP_RSP + SEQ_CLASS, 0);
    }
    store<u32>(q + QP_RETRY_CNT, a & 7);
    store<u32>(q + QP_RETRIES_LEFT, a & 7);
    store<u32>(q + QP_RNR_RETRY, b & 7);
  }
  store<u32>(q + QP_STATE, to);
  count(Counter.rdma_qp_transitions);
  return 0;
}

/** Requester: take `n` PSNs for a new request; returns the first. */
export function qpTakePsns(qpn: u32, n: u32): u32 {
  const q = qpAddr(qpn);
  const psn = load<u32>(q + QP_SQ_PSN);
  store<u32>(q + QP_SQ_PSN, (psn + n) & PSN_MASK);
  return psn;
}

/**
 * Requester: an ACK (or the last response packet) for `psn` arrived: everything up to and
 * including it is acknowledged (ACKs are cumulative, §9.7.5.1.3). Returns how many PSNs it
 * newly acknowledged (0 for a stale or duplicate ACK; a PSN not yet sent is ignored).
 */
export function qpAcked(qpn: u32, psn: u32): u32 {
  const q = qpAddr(qpn);
  const una = load<u32>(q + QP_SQ_UNA);
  const d = psnDiff(psn, una);
  if (d < 0 || psnDiff(load<u32>(q + QP_SQ_PSN), psn) <= 0) return 0;
  store<u32>(q + QP_SQ_UNA, (psn + 1) & PSN_MASK);
  store<u32>(q + QP_RETRIES_LEFT, load<u32>(q + QP_RETRY_CNT));
  return <u32>d + 1;
}

/**
 * Requester: the retransmit timer fired (or a NAK PSN sequence error arrived). Go-back-N
 * restarts at the oldest unacknowledged PSN: returns it, or RETRY_EXHAUSTED when the retry
 * count is exhausted and the QP went to ERR.
 */
export const RETRY_EXHAUSTED: u32 = 0xffffffff; // not a PSN: PSNs are 24 bits
export function qpRetry(qpn: u32): u32 {
  const q = qpAddr(qpn);
  const left = load<u32>(q + QP_RETRIES_LEFT);
  if (left == 0) { qpModify(qpn, QpState.ERR, 0, 0, 0); return RETRY_EXHAUSTED; }
  store<u32>(q + QP_RETRIES_LEFT, left - 1);
  return load<u32>(q + QP_SQ_UNA);
}

/** Responder: count a received packet toward the next coalesced ACK; true when one is due. */
export function qpAckDue(qpn: u32, ackreq: bool, every: u32): bool {
  const q = qpAddr(qpn);
  const n = load<u32>(q + QP_ACK_PENDING) + 1;
  if (ackreq || n >= every) { store<u32>(q + QP_ACK_PENDING, 0); return true; }
  store<u32>(q + QP_ACK_PENDING, n);
  return false;
}
