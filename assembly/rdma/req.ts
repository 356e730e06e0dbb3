// RC requester and completer (IBTA vol. 1 §9.7.4 requester, §9.7.5.1 – §9.7.6 completer; in the
// spirit of Linux rxe_req.c / rxe_comp.c, our own code). Work requests are posted in batches
// into the per-QP send queue (rdmaRcPostSend), transmitted through tx.ts with PSNs from qp.ts,
// acknowledged cumulatively by ACKs and READ RESPONSEs; the retransmission timer runs on the
// virtual clock of rdmaRcPoll; go-back-N restarts at the oldest unacknowledged PSN on a timeout
// or a NAK PSN sequence error, until the retry count is spent (QP → ERR, RETRY_EXC_ERR); an
// RNR NAK waits its timer then resends; other NAKs complete the request with an error and move
// the QP to ERR, which flushes the rest. READ RESPONSE data goes straight into the local MR.
import { Counter } from "../counters";
import { count } from "../stats";
import { MAX_QPS, RCQ_SIZE } from "../memmap";
import {
  Op, OpClass, Pos, PSN_MASK, OPT_AETH, OPT_HDRLEN, AETH_TYPE_MASK, AETH_ACK, AETH_RNR_NAK, AETH_NAK, NAK_PSN_SEQ_ERROR,
  NAK_INVALID_REQUEST, NAK_REMOTE_ACCESS_ERROR, TXD_OPCODE, TXD_DQP, TXD_PSN, TXD_ACKREQ, TXD_LEN, TXD_MTU, TXD_PAYLOAD,
  TXD_FROM_PKT, TXD_IMM_FLAG, TXD_IMM, TXD_RETH_VA, TXD_RETH_RKEY, TXD_RETH_LEN,
} from "./wire";
import { opEntry, opPos } from "./opcodes";
import { be32 } from "./headers";
import { psnDiff } from "./seq";
import { qpAddr, qpModify, qpAcked, qpRetry, RETRY_EXHAUSTED, qpTakePsns, QpState, QP_STATE, QP_MTU, QP_DEST_QP, QP_SQ_PSN, QP_SQ_UNA, QP_RNR_RETRY } from "./qp";
import { txPacket, txMessage, segCount, segOpcode, TX_ERROR } from "./tx";
import { mrCheck, MR_DENIED } from "./mr";
import { rcAddr, rcTxd, rcNow, cqPush, rnrNs, ackFlush } from "./rc";
import {
  RCQ_CTRL, RCQ_SQ, RCQ_RQ, RC_SQ_DEPTH, RC_RQ_DEPTH, SWQE_SIZE, SWQE_WRID, SWQE_OP, SWQE_LKEY, SWQE_LADDR, SWQE_LEN, SWQE_RKEY,
  SWQE_RADDR, SWQE_IMM, SWQE_CARD, SWQE_POS, SWQE_FLAGS, SWF_UNSIGNALED, SWQE_PSN, SWQE_NPKT, SWQE_DONE, SWQE_STATUS, RWQE_SIZE, RWQE_WRID, RWQE_LADDR, RWQE_LKEY,
  RWQE_LEN, RWQE_CARD, RWQE_STATUS, RCC_ON, RCC_SQ_TAIL, RCC_SQ_NEXT, RCC_SQ_HEAD, RCC_RQ_TAIL, RCC_RQ_HEAD, RCC_TIMER,
  RCC_SQ_HWM, RCC_DEADLINE, RCC_TIMEOUT, RCC_RNR_UNTIL, RCC_RNR_WAIT, RCC_RNR_USED, RCC_ACK_EVERY, RCC_MIN_RNR, RCC_MAX_WR,
  RCC_FROM_PKT, RCC_ACK_OWED, MR_LOCAL_WRITE, WrOp, WcStatus, WcOp, RNR_RETRY_INFINITE,
} from "./rcdefs";

@inline function sqWqe(c: u32, i: u32): u32 { return c - RCQ_CTRL + RCQ_SQ + (i % RC_SQ_DEPTH) * SWQE_SIZE; }
@inline function rqWqe(c: u32, i: u32): u32 { return c - RCQ_CTRL + RCQ_RQ + (i % RC_RQ_DEPTH) * RWQE_SIZE; }
@inline function wqeOp(w: u32): u32 { return <u32>load<u8>(w + SWQE_OP); }
@inline function wcOp(op: u32): u32 { return op == WrOp.READ ? WcOp.RDMA_READ : op >= <u32>WrOp.WRITE ? WcOp.RDMA_WRITE : WcOp.SEND; }
@inline function armTimer(c: u32): void { store<u32>(c + RCC_TIMER, 1); store<f64>(c + RCC_DEADLINE, rcNow() + load<f64>(c + RCC_TIMEOUT)); }

/**
 * Let the RC engine drive QP qpn: clears its queues, sets the local ACK timeout (virtual ns),
 * the responder's ACK coalescing (an ACK at least every `ackEvery` packets), the RNR timer
 * code its RNR NAKs carry and the number of work requests in flight at most. The host then
 * fills the transmit descriptor at rdmaRcBlock(qpn) + RCC_TXD (addresses). Returns 0 or the
 * Counter of the refusal.
 */
export function rcEnable(qpn: u32, timeoutNs: f64, ackEvery: u32, rnrCode: u32, maxWr: u32): u32 {
  if (qpn >= MAX_QPS) { count(Counter.err_rdma_bad_qp); return Counter.err_rdma_bad_qp; }
  if (!(timeoutNs > 0) || ackEvery == 0 || rnrCode > 31 || maxWr == 0 || maxWr > RC_SQ_DEPTH) { count(Counter.err_rdma_tx_bad_desc); return Counter.err_rdma_tx_bad_desc; }
  const c = rcAddr(qpn);
  memory.fill(c - RCQ_CTRL, 0, RCQ_SIZE);
  store<f64>(c + RCC_TIMEOUT, timeoutNs);
  store<u32>(c + RCC_ACK_EVERY, ackEvery);
  store<u32>(c + RCC_MIN_RNR, rnrCode);
  store<u32>(c + RCC_MAX_WR, maxWr);
  store<u32>(c + RCC_ON, 1);
  return 0;
}

/**
 * A WRITE_PKT's payload against the path MTU (§9.7.7: every packet but the last of a message
 * carries exactly the MTU) and its message total: FIRST / MIDDLE exactly the MTU; LAST / ONLY
 * at most; ONLY is the whole message, FIRST only its start.
 */
export function writePktLenOk(pos: u32, len: u32, total: u32, mtu: u32): bool {
  if (pos == Pos.FIRST) return len == mtu && total > len;
  if (pos == Pos.MIDDLE) return len == mtu;
  if (pos == Pos.LAST) return len <= mtu;
  if (pos == Pos.ONLY) return len <= mtu && total == len;
  return false;
}

/**
 * The host wrote `n` send WQEs (SWQE_*) at slots RCC_SQ_TAIL.. of QP qpn: check each (local
 * key, bounds and access of its buffer; opcode; QP able to send) and queue them. A WQE that
 * fails keeps its place and completes, in order, with its error status (LOC_PROT_ERR,
 * LOC_QP_OP_ERR), moving the QP to ERR. Returns n, or 0 when they do not fit the free slots
 * (err_rdma_sq_full).
 */
export function rcPostSend(qpn: u32, n: u32): u32 {
  if (qpn >= MAX_QPS || load<u32>(rcAddr(qpn) + RCC_ON) == 0) { count(Counter.err_rdma_bad_qp); return 0; }
  const c = rcAddr(qpn);
  const tail = load<u32>(c + RCC_SQ_TAIL);
  if (n > RC_SQ_DEPTH - (tail - load<u32>(c + RCC_SQ_HEAD))) { count(Counter.err_rdma_sq_full); return 0; }
  const mtu = load<u32>(qpAddr(qpn) + QP_MTU);
  for (let i: u32 = 0; i < n; i++) {
    const w = sqWqe(c, tail + i);
    const op = wqeOp(w);
    const len = load<u32>(w + SWQE_LEN);
    let status: u32 = WcStatus.SUCCESS;
    let card: u32 = 0;
    if (op > <u32>WrOp.WRITE_PKT || mtu == 0) status = WcStatus.LOC_QP_OP_ERR;
    else if (op == WrOp.WRITE_PKT && !writePktLenOk(<u32>load<u8>(w + SWQE_POS), len, load<u32>(w + SWQE_IMM), mtu)) status = WcStatus.LOC_LEN_ERR;
    if (status == WcStatus.SUCCESS && len != 0) {
      card = mrCheck(load<u32>(w + SWQE_LKEY), load<u64>(w + SWQE_LADDR), len, op == WrOp.READ ? MR_LOCAL_WRITE : 0);
      if (card == MR_DENIED) status = WcStatus.LOC_PROT_ERR;
    }
    if (status != WcStatus.SUCCESS) count(Counter.err_rdma_bad_wqe);
    store<u32>(w + SWQE_CARD, card);
    store<u32>(w + SWQE_STATUS, status);
    store<u32>(w + SWQE_NPKT, mtu == 0 || op == WrOp.WRITE_PKT ? 1 : segCount(len, mtu));
    store<u32>(w + SWQE_DONE, 0);
    store<u32>(w + SWQE_PSN, 0);
  }
  store<u32>(c + RCC_SQ_TAIL, tail + n);
  return n;
}

/**
 * Queue the send WQE a firmware layer built at QP qpn's send queue tail (the storage-side NIC):
 * its buffer is card memory at `card` that the caller has already checked, its opcode, position
 * and lengths the caller's own rules (writePktLenOk for WRITE_PKT). The caller has checked that
 * the queue has room and the engine drives the QP. Skips rcPostSend's per-WQE checks.
 */
export function rcPostBuilt(qpn: u32, card: u32): void {
  const c = rcAddr(qpn);
  const tail = load<u32>(c + RCC_SQ_TAIL);
  const w = sqWqe(c, tail);
  store<u32>(w + SWQE_CARD, card);
  store<u32>(w + SWQE_STATUS, WcStatus.SUCCESS);
  store<u32>(w + SWQE_NPKT, wqeOp(w) == WrOp.WRITE_PKT ? 1 : segCount(load<u32>(w + SWQE_LEN), load<u32>(qpAddr(qpn) + QP_MTU)));
  store<u32>(w + SWQE_DONE, 0);
  store<u32>(w + SWQE_PSN, 0);
  store<u32>(c + RCC_SQ_TAIL, tail + 1);
}

/**
 * The host wrote `n` receive WQEs (RWQE_*) at slots RCC_RQ_TAIL.. of QP qpn: each buffer is
 * checked (local key, bounds, LOCAL_WRITE). A bad one completes at once with LOC_PROT_ERR and
 * is taken out (the good ones close up). Returns the WQEs queued, 0 when n does not fit the
 * free slots (err_rdma_sq_full).
 */
export function rcPostRecv(qpn: u32, n: u32): u32 {
  if (qpn >= MAX_QPS || load<u32>(rcAddr(qpn) + RCC_ON) == 0) { count(Counter.err_rdma_bad_qp); return 0; }
  const c = rcAddr(qpn);
  const tail = load<u32>(c + RCC_RQ_TAIL);
  if (n > RC_RQ_DEPTH - (tail - load<u32>(c + RCC_RQ_HEAD))) { count(Counter.err_rdma_sq_full); return 0; }
  let k: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const w = rqWqe(c, tail + i);
    const len = load<u32>(w + RWQE_LEN);
    const card = len == 0 ? 0 : mrCheck(load<u32>(w + RWQE_LKEY), load<u64>(w + RWQE_LADDR), len, MR_LOCAL_WRITE);
    if (card == MR_DENIED) {
      count(Counter.err_rdma_bad_wqe);
      cqPush(qpn, load<u64>(w + RWQE_WRID), WcStatus.LOC_PROT_ERR, WcOp.RECV, 0, 0, 0);
      continue;
    }
    store<u32>(w + RWQE_CARD, card);
    store<u32>(w + RWQE_STATUS, 0);
    const to = rqWqe(c, tail + k);
    if (to != w) memory.copy(to, w, RWQE_SIZE);
    k++;
  }
  store<u32>(c + RCC_RQ_TAIL, tail + k);
  return k;
}

/** Every work request still queued completes with WR_FLUSH_ERR (QP in ERR, §10.3.1). */
function flushAll(qpn: u32, c: u32): void {
  const tail = load<u32>(c + RCC_SQ_TAIL);
  for (let i = load<u32>(c + RCC_SQ_HEAD); i != tail; i++) {
    const w = sqWqe(c, i);
    cqPush(qpn, load<u64>(w + SWQE_WRID), WcStatus.WR_FLUSH_ERR, wcOp(wqeOp(w)), 0, 0, 0);
  }
  store<u32>(c + RCC_SQ_HEAD, tail);
  store<u32>(c + RCC_SQ_NEXT, tail);
  store<u32>(c + RCC_SQ_HWM, tail);
  const rt = load<u32>(c + RCC_RQ_TAIL);
  for (let i = load<u32>(c + RCC_RQ_HEAD); i != rt; i++) {
    cqPush(qpn, load<u64>(rqWqe(c, i) + RWQE_WRID), WcStatus.WR_FLUSH_ERR, WcOp.RECV, 0, 0, 0);
  }
  store<u32>(c + RCC_RQ_HEAD, rt);
  store<u32>(c + RCC_TIMER, 0);
  store<u32>(c + RCC_RNR_WAIT, 0);
}

/** The oldest work request fails with `status` (reason counted unless 0); the QP goes to ERR and the rest is flushed. */
function failHead(qpn: u32, c: u32, status: u32, reason: u32): void {
  if (reason != 0) count(<Counter>reason);
  const head = load<u32>(c + RCC_SQ_HEAD);
  if (head != load<u32>(c + RCC_SQ_TAIL)) {
    const w = sqWqe(c, head);
    cqPush(qpn, load<u64>(w + SWQE_WRID), status, wcOp(wqeOp(w)), 0, 0, 0);
    store<u32>(c + RCC_SQ_HEAD, head + 1);
  }
  qpModify(qpn, QpState.ERR, 0, 0, 0);
  flushAll(qpn, c);
}

/** Complete, in order, the work requests that are done: all their PSNs acknowledged (a READ: all its data placed). */
function compProgress(qpn: u32, c: u32): void {
  const q = qpAddr(qpn);
  const una = load<u32>(q + QP_SQ_UNA);
  const next = load<u32>(c + RCC_SQ_NEXT);
  const hwm = load<u32>(c + RCC_SQ_HWM);
  let head = load<u32>(c + RCC_SQ_HEAD);
  while (head != hwm) {
    const w = sqWqe(c, head);
    const op = wqeOp(w);
    const np = load<u32>(w + SWQE_NPKT);
    const done = op == WrOp.READ ? load<u32>(w + SWQE_DONE) == np : psnDiff(una, load<u32>(w + SWQE_PSN) + np - 1) > 0;
    if (!done) break;
    if ((<u32>load<u16>(w + SWQE_FLAGS) & SWF_UNSIGNALED) == 0) cqPush(qpn, load<u64>(w + SWQE_WRID), WcStatus.SUCCESS, wcOp(op), load<u32>(w + SWQE_LEN), 0, 0);
    head++;
  }
  store<u32>(c + RCC_SQ_HEAD, head);
  if (<i32>(next - head) < 0) store<u32>(c + RCC_SQ_NEXT, head);
  // A work request refused when posted fails once everything before it has completed.
  if (head == load<u32>(c + RCC_SQ_NEXT) && head != load<u32>(c + RCC_SQ_TAIL)) {
    const st = load<u32>(sqWqe(c, head) + SWQE_STATUS);
    if (st != WcStatus.SUCCESS) failHead(qpn, c, st, 0);
  }
}

/**
 * Cumulative acknowledgement up to and including `psn`, except past a READ whose responses
 * have not all arrived (its data is still due: §9.7.5.1.3 implied NAK, resent by the timer).
 */
function ackTo(qpn: u32, c: u32, psn: u32): void {
  const hwm = load<u32>(c + RCC_SQ_HWM);
  for (let i = load<u32>(c + RCC_SQ_HEAD); i != hwm; i++) {
    const w = sqWqe(c, i);
    if (wqeOp(w) != WrOp.READ) continue;
    const done = load<u32>(w + SWQE_DONE);
    if (done == load<u32>(w + SWQE_NPKT)) continue;
    const rd = (load<u32>(w + SWQE_PSN) + done) & PSN_MASK;
    if (psnDiff(psn, rd) >= 0) psn = (rd - 1) & PSN_MASK;
    break;
  }
  const q = qpAddr(qpn);
  if (qpAcked(qpn, psn) > 0) {
    store<u32>(c + RCC_RNR_USED, 0);
    if (load<u32>(q + QP_SQ_UNA) == load<u32>(q + QP_SQ_PSN)) store<u32>(c + RCC_TIMER, 0);
    else armTimer(c);
  }
  compProgress(qpn, c);
}

/** Go-back-N: transmit again from the oldest unacknowledged PSN (§9.7.6.1.3). */
function startResend(qpn: u32, c: u32): void {
  const una = load<u32>(qpAddr(qpn) + QP_SQ_UNA);
  const hwm = load<u32>(c + RCC_SQ_HWM);
  for (let i = load<u32>(c + RCC_SQ_HEAD); i != hwm; i++) {
    const w = sqWqe(c, i);
    const d = psnDiff(una, load<u32>(w + SWQE_PSN));
    if (d >= 0 && <u32>d < load<u32>(w + SWQE_NPKT)) {
      store<u32>(c + RCC_SQ_NEXT, i);
      store<u32>(c + RCC_FROM_PKT, <u32>d);
      count(Counter.rdma_rc_resends);
      break;
    }
  }
  armTimer(c);
}

/** Transmit WQE w from its packet `from` through the QP's descriptor; false when the TX ring is full. */
function sendWqe(qpn: u32, c: u32, w: u32, from: u32): bool {
  const q = qpAddr(qpn);
  const d = rcTxd(c);
  const op = wqeOp(w);
  const mtu = load<u32>(q + QP_MTU);
  const psn = load<u32>(w + SWQE_PSN);
  store<u32>(d + TXD_DQP, load<u32>(q + QP_DEST_QP));
  store<u32>(d + TXD_ACKREQ, 1);
  store<u32>(d + TXD_RETH_RKEY, load<u32>(w + SWQE_RKEY));
  if (op == WrOp.READ) {
    // A resent READ asks only for the data not yet received, at the PSN of its next response (§9.7.4.1.4).
    const off = from * mtu;
    store<u8>(d + TXD_OPCODE, <u8>Op.RC_READ_REQUEST);
    store<u32>(d + TXD_PSN, (psn + from) & PSN_MASK);
    store<u64>(d + TXD_RETH_VA, load<u64>(w + SWQE_RADDR) + <u64>off);
    store<u32>(d + TXD_RETH_LEN, load<u32>(w + SWQE_LEN) - off);
    store<u32>(d + TXD_LEN, 0);
    store<u32>(d + TXD_IMM_FLAG, 0);
    return txPacket(d) != TX_ERROR;
  }
  if (op == WrOp.WRITE_PKT) return sendPkt(d, w, psn);
  const cls = op >= <u32>WrOp.WRITE ? OpClass.WRITE : OpClass.SEND;
  const imm = op == WrOp.SEND_IMM || op == WrOp.WRITE_IMM;
  const len = load<u32>(w + SWQE_LEN);
  store<u32>(d + TXD_PSN, psn);
  store<u64>(d + TXD_RETH_VA, load<u64>(w + SWQE_RADDR));
  store<u32>(d + TXD_RETH_LEN, 0);
  store<u32>(d + TXD_PAYLOAD, load<u32>(w + SWQE_CARD));
  store<u32>(d + TXD_LEN, len);
  store<u32>(d + TXD_IMM, load<u32>(w + SWQE_IMM));
  if (len <= mtu) {
    // One packet (the usual response capsule): the ONLY opcode straight through txPacket.
    store<u8>(d + TXD_OPCODE, <u8>segOpcode(cls, Pos.ONLY, imm));
    store<u32>(d + TXD_IMM_FLAG, 0);
    return txPacket(d) != TX_ERROR;
  }
  store<u8>(d + TXD_OPCODE, <u8>cls);
  store<u32>(d + TXD_MTU, mtu);
  store<u32>(d + TXD_FROM_PKT, from);
  store<u32>(d + TXD_IMM_FLAG, imm ? 1 : 0);
  return txMessage(d) != TX_ERROR;
}

/**
 * The one packet of a WRITE_PKT at its PSN (first send and go-back-N alike): RETH on FIRST /
 * ONLY with the message total as DMA length, AckReq on the packet that ends the message.
 */
function sendPkt(d: u32, w: u32, psn: u32): bool {
  const pos = <u32>load<u8>(w + SWQE_POS);
  const ends = pos == Pos.LAST || pos == Pos.ONLY;
  store<u8>(d + TXD_OPCODE, <u8>segOpcode(OpClass.WRITE, pos, false));
  store<u32>(d + TXD_PSN, psn);
  store<u32>(d + TXD_ACKREQ, ends ? 1 : 0);
  store<u64>(d + TXD_RETH_VA, load<u64>(w + SWQE_RADDR));
  store<u32>(d + TXD_RETH_LEN, pos == Pos.FIRST || pos == Pos.ONLY ? load<u32>(w + SWQE_IMM) : 0);
  store<u32>(d + TXD_PAYLOAD, load<u32>(w + SWQE_CARD));
  store<u32>(d + TXD_LEN, load<u32>(w + SWQE_LEN));
  store<u32>(d + TXD_IMM_FLAG, 0);
  return txPacket(d) != TX_ERROR;
}

/**
 * Timers, resends and new work requests of QP qpn at the current virtual time (rcSetNow):
 * what rdmaRcPoll does for every engine QP, and what the storage-side NIC calls right after
 * posting so that packets leave in the order it fetched them.
 */
export function rcService(qpn: u32): void {
  const c = rcAddr(qpn);
  const q = qpAddr(qpn);
  const st = load<u32>(q + QP_STATE);
  if (st == QpState.ERR) {
    store<u32>(c + RCC_ACK_OWED, 0);
    if (load<u32>(c + RCC_SQ_HEAD) != load<u32>(c + RCC_SQ_TAIL) || load<u32>(c + RCC_RQ_HEAD) != load<u32>(c + RCC_RQ_TAIL)) flushAll(qpn, c);
    return;
  }
  // The receive batch is done: one ACK for what it accepted (only a QP that can still answer).
  if (st == QpState.RTS || st == QpState.RTR) ackFlush(qpn, c);
  else store<u32>(c + RCC_ACK_OWED, 0);
  if (st != QpState.RTS) return;
  const now = rcNow();
  if (load<u32>(c + RCC_RNR_WAIT) != 0) {
    if (now < load<f64>(c + RCC_RNR_UNTIL)) return;
    store<u32>(c + RCC_RNR_WAIT, 0);
    startResend(qpn, c);
  } else if (load<u32>(c + RCC_TIMER) != 0 && now >= load<f64>(c + RCC_DEADLINE)) {
    if (load<u32>(q + QP_SQ_UNA) == load<u32>(q + QP_SQ_PSN)) store<u32>(c + RCC_TIMER, 0);
    else {
      count(Counter.rdma_rc_timeouts);
      if (qpRetry(qpn) == RETRY_EXHAUSTED) { failHead(qpn, c, WcStatus.RETRY_EXC_ERR, Counter.err_rdma_retry_exceeded); return; }
      startResend(qpn, c);
    }
  }
  compProgress(qpn, c);
  if (load<u32>(q + QP_STATE) != QpState.RTS) return;
  rcTransmit(qpn, c, q);
}

/**
 * Transmit QP qpn's queued work requests (new ones, or a go-back-N resend in progress) while the
 * in-flight limit and the TX ring allow; the timers and completions are rcService's. For a QP
 * in RTS with no RNR wait running: the storage-side NIC calls it right after each post.
 */
export function rcTransmit(qpn: u32, c: u32, q: u32): void {
  if (load<u32>(c + RCC_RNR_WAIT) != 0) return;
  const tail = load<u32>(c + RCC_SQ_TAIL);
  const maxWr = load<u32>(c + RCC_MAX_WR);
  let next = load<u32>(c + RCC_SQ_NEXT);
  while (next != tail && next - load<u32>(c + RCC_SQ_HEAD) < maxWr) {
    const w = sqWqe(c, next);
    if (load<u32>(w + SWQE_STATUS) != WcStatus.SUCCESS) break; // completes with its error when it reaches the head
    const fresh = next == load<u32>(c + RCC_SQ_HWM);
    if (fresh) store<u32>(w + SWQE_PSN, load<u32>(q + QP_SQ_PSN));
    if (!sendWqe(qpn, c, w, load<u32>(c + RCC_FROM_PKT))) break; // TX ring full: the rest next poll
    store<u32>(c + RCC_FROM_PKT, 0);
    if (fresh) { qpTakePsns(qpn, load<u32>(w + SWQE_NPKT)); store<u32>(c + RCC_SQ_HWM, next + 1); }
    next++;
    store<u32>(c + RCC_SQ_NEXT, next);
    if (load<u32>(c + RCC_TIMER) == 0) armTimer(c);
  }
}

/** Service every QP the engine drives (after the receive batch); all state is in card memory. */
export function rcServiceAll(): void {
  for (let qpn: u32 = 0; qpn < MAX_QPS; qpn++) if (load<u32>(rcAddr(qpn) + RCC_ON) != 0) rcService(qpn);
}

/**
 * Completer: an ACKNOWLEDGE or READ RESPONSE packet for QP qpn (from rcDeliver). Returns 0
 * when taken, or the Counter the receive path logs.
 */
export function compRecv(qpn: u32, op: u32, b: u32, psn: u32, plen: u32): u32 {
  const q = qpAddr(qpn);
  const c = rcAddr(qpn);
  if (load<u32>(q + QP_STATE) != QpState.RTS) return Counter.err_rdma_bad_qp;
  const e = opEntry(op);
  if (op == Op.RC_ACK || op == Op.RC_ATOMIC_ACK) {
    const syn = be32(b + <u32>load<u8>(e + OPT_AETH)) >> 24;
    const type = syn & AETH_TYPE_MASK;
    if (type == AETH_ACK) { ackTo(qpn, c, psn); return 0; }
    const una = load<u32>(q + QP_SQ_UNA);
    // A NAK names a PSN in flight; any other is stale (a duplicate of one already handled).
    if (psnDiff(psn, una) < 0 || psnDiff(load<u32>(q + QP_SQ_PSN), psn) <= 0) return Counter.rdma_rx_duplicate;
    ackTo(qpn, c, (psn - 1) & PSN_MASK); // everything before the NAKed PSN is done
    if (load<u32>(q + QP_STATE) != QpState.RTS) return 0;
    if (type == AETH_RNR_NAK) {
      count(Counter.rdma_rc_rnr_waits);
      const used = load<u32>(c + RCC_RNR_USED);
      const limit = load<u32>(q + QP_RNR_RETRY);
      if (limit != RNR_RETRY_INFINITE && used >= limit) { failHead(qpn, c, WcStatus.RNR_RETRY_EXC_ERR, Counter.err_rdma_rnr_retry_exceeded); return 0; }
      store<u32>(c + RCC_RNR_USED, used + 1);
      store<u32>(c + RCC_RNR_WAIT, 1);
      store<f64>(c + RCC_RNR_UNTIL, rcNow() + rnrNs(syn & 31));
      store<u32>(c + RCC_TIMER, 0);
      return 0;
    }
    if (type == AETH_NAK) {
      const code = syn & 31;
      if (code == NAK_PSN_SEQ_ERROR) {
        if (load<u32>(c + RCC_RNR_WAIT) != 0) return 0; // the RNR wait resends anyway
        if (qpRetry(qpn) == RETRY_EXHAUSTED) { failHead(qpn, c, WcStatus.RETRY_EXC_ERR, Counter.err_rdma_retry_exceeded); return 0; }
        startResend(qpn, c);
        return 0;
      }
      failHead(qpn, c, code == NAK_INVALID_REQUEST ? WcStatus.REM_INV_REQ_ERR : code == NAK_REMOTE_ACCESS_ERROR ? WcStatus.REM_ACCESS_ERR : WcStatus.REM_OP_ERR,
        Counter.err_rdma_remote_nak);
      return 0;
    }
    return Counter.err_rdma_bad_length; // reserved syndrome type (§9.3.5 table 43)
  }
  // READ RESPONSE: the packet must be the next one of a READ in flight.
  const hwm = load<u32>(c + RCC_SQ_HWM);
  for (let i = load<u32>(c + RCC_SQ_HEAD); i != hwm; i++) {
    const w = sqWqe(c, i);
    if (wqeOp(w) != WrOp.READ) continue;
    const np = load<u32>(w + SWQE_NPKT);
    const k = psnDiff(psn, load<u32>(w + SWQE_PSN));
    if (k < 0 || <u32>k >= np) continue;
    const done = load<u32>(w + SWQE_DONE);
    if (<u32>k < done) return Counter.rdma_rx_duplicate;
    if (<u32>k > done) return Counter.err_rdma_psn_out_of_seq; // an earlier response was lost: the timer resends
    // Packet k of the READ; after a resend from packet k the responder starts a new response
    // message there, so packet k may also come as FIRST (or ONLY when it is the last one).
    const pos = opPos(op);
    const last = <u32>k == np - 1;
    const ok = k == 0 ? pos == (last ? Pos.ONLY : Pos.FIRST)
      : last ? pos == Pos.LAST || pos == Pos.ONLY : pos == Pos.MIDDLE || pos == Pos.FIRST;
    if (!ok) return Counter.err_rdma_read_resp_seq;
    const mtu = load<u32>(q + QP_MTU);
    const off = <u32>k * mtu;
    const left = load<u32>(w + SWQE_LEN) - off;
    if (plen != (left < mtu ? left : mtu)) return Counter.err_rdma_bad_length;
    if (plen) memory.copy(load<u32>(w + SWQE_CARD) + off, b + <u32>load<u8>(e + OPT_HDRLEN), plen);
    store<u32>(w + SWQE_DONE, done + 1);
    ackTo(qpn, c, psn); // a response acknowledges every request before it (§9.7.5.1.3)
    return 0;
  }
  return Counter.rdma_rx_duplicate; // no READ in flight has that PSN: a late copy
}

/**
 * Earliest virtual time (ns) at which a retransmission timer or an RNR wait of an engine QP
 * in RTS ends, or +Infinity when none runs: a host loop may jump its clock there when idle.
 */
export function rcNextDeadline(): f64 {
  let t: f64 = Infinity;
  for (let qpn: u32 = 0; qpn < MAX_QPS; qpn++) {
    const c = rcAddr(qpn);
    if (load<u32>(c + RCC_ON) == 0 || load<u32>(qpAddr(qpn) + QP_STATE) != QpState.RTS) continue;
    if (load<u32>(c + RCC_RNR_WAIT) != 0) { const u = load<f64>(c + RCC_RNR_UNTIL); if (u < t) t = u; }
    else if (load<u32>(c + RCC_TIMER) != 0) { const u = load<f64>(c + RCC_DEADLINE); if (u < t) t = u; }
  }
  return t;
}
