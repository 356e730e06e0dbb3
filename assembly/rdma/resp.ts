// RC responder (IBTA vol. 1 §9.7.4 – §9.7.5; in the spirit of Linux rxe_resp.c, our own code),
// fed by rx.ts deliver() for QPs the RC engine drives: SEND into posted receive WQEs (none →
// RNR NAK), RDMA WRITE into a memory region, RDMA READ REQUEST answered with READ RESPONSE
// packets cut at the path MTU, duplicates re-acknowledged (duplicate READs executed again),
// a PSN sequence error NAKed once until the expected PSN arrives, a bad R_Key / out-of-region
// / refused access NAKed as remote access error, malformed requests as invalid request; ACKs
// coalesced (one every RCC_ACK_EVERY packets, or on AckReq) with the MSN and a credit count.
import { Counter } from "../counters";
import { count } from "../stats";
import {
  Op, OpClass, Pos, PSN_MASK, OPT_HDRLEN, BTH_PSN_OFF, BTH_ACKREQ, RETH_VA_OFF, RETH_RKEY_OFF, RETH_DMALEN_OFF, OPT_RETH, OPT_IMMDT,
  AETH_ACK, AETH_RNR_NAK, AETH_NAK, AETH_TYPE_MASK, MSN_MASK, NAK_PSN_SEQ_ERROR, NAK_INVALID_REQUEST, NAK_REMOTE_ACCESS_ERROR, TXD_OPCODE, TXD_DQP,
  TXD_PSN, TXD_ACKREQ, TXD_AETH, TXD_LEN, TXD_MTU, TXD_PAYLOAD, TXD_FROM_PKT, TXD_IMM_FLAG,
} from "./wire";
import { opEntry, opClass, opPos } from "./opcodes";
import { be32 } from "./headers";
import { seqCheck, SEQ_EPSN, SEQ_CLASS } from "./seq";
import { qpAddr, qpAckDue, QpState, QP_STATE, QP_RQ, QP_MTU, QP_RQ_MSN, QP_DEST_QP } from "./qp";
import { txMessage, TX_ERROR } from "./tx";
import { mrCheck, mrReason, MR_DENIED } from "./mr";
import { rcAddr, rcTxd, cqPush, creditCode, sendAck } from "./rc";
import { compRecv } from "./req";
import { cmCommEstablished } from "./cm";
import {
  RCQ_CTRL, RCQ_RQ, RCC_RQ_TAIL, RCC_RQ_HEAD, RCC_RECV_OFF, RCC_WR_ADDR, RCC_WR_LEFT, RCC_NAK_SENT, RCC_ACK_EVERY, RCC_MIN_RNR, RCC_ACK_OWED, RCC_ACK_PSN,
  RC_RQ_DEPTH, RWQE_SIZE, RWQE_WRID, RWQE_LEN, RWQE_CARD, MR_REMOTE_WRITE, MR_REMOTE_READ, WcStatus, WcOp, CQF_IMM,
} from "./rcdefs";

@inline function rqWqe(c: u32, i: u32): u32 { return c - RCQ_CTRL + RCQ_RQ + (i % RC_RQ_DEPTH) * RWQE_SIZE; }
@inline function rqEmpty(c: u32): bool { return load<u32>(c + RCC_RQ_TAIL) == load<u32>(c + RCC_RQ_HEAD); }

/**
 * A NAK (or RNR NAK) for `psn`; counted by kind. The packets behind it are out of sequence
 * now; they get no PSN sequence error NAK of their own until the expected PSN arrives (the
 * requester already knows where things stand).
 */
function nak(qpn: u32, c: u32, psn: u32, syn: u32): void {
  if (sendAck(qpn, c, psn, syn)) count((syn & AETH_TYPE_MASK) == AETH_RNR_NAK ? Counter.rdma_rc_rnr_naks_sent : Counter.rdma_rc_naks_sent);
  store<u32>(c + RCC_NAK_SENT, 1);
}

/** RNR NAK for `psn`: no receive WQE (§9.7.5.2.8); the requester resumes there after its wait. */
function rnrNak(qpn: u32, c: u32, psn: u32): void {
  nak(qpn, c, psn, AETH_RNR_NAK | (load<u32>(c + RCC_MIN_RNR) & 31));
}

/**
 * Answer a READ REQUEST at `psn` for [va, va+len) of rkey: READ RESPONSE packets from the MR
 * (one ONLY packet for 0 bytes). Returns 0, the access Counter (NAK remote access error sent),
 * or err_rdma_tx_ring_full (nothing sent; the requester's timer resends the request).
 */
function readRespond(qpn: u32, c: u32, b: u32, psn: u32): u32 {
  const r = b + <u32>load<u8>(opEntry(Op.RC_READ_REQUEST) + OPT_RETH);
  const len = be32(r + RETH_DMALEN_OFF);
  const va = (<u64>be32(r + RETH_VA_OFF) << 32) | <u64>be32(r + RETH_VA_OFF + 4);
  const src = len == 0 ? 0 : mrCheck(be32(r + RETH_RKEY_OFF), va, len, MR_REMOTE_READ);
  if (src == MR_DENIED) { nak(qpn, c, psn, AETH_NAK | NAK_REMOTE_ACCESS_ERROR); return mrReason(); }
  const q = qpAddr(qpn);
  const d = rcTxd(c);
  store<u8>(d + TXD_OPCODE, <u8>OpClass.READ_RESPONSE);
  store<u32>(d + TXD_DQP, load<u32>(q + QP_DEST_QP));
  store<u32>(d + TXD_PSN, psn);
  store<u32>(d + TXD_ACKREQ, 0);
  store<u32>(d + TXD_AETH, ((AETH_ACK | creditCode(c)) << 24) | (load<u32>(q + QP_RQ_MSN) & MSN_MASK));
  store<u32>(d + TXD_PAYLOAD, src);
  store<u32>(d + TXD_LEN, len);
  store<u32>(d + TXD_MTU, load<u32>(q + QP_MTU));
  store<u32>(d + TXD_FROM_PKT, 0);
  store<u32>(d + TXD_IMM_FLAG, 0);
  if (txMessage(d) == TX_ERROR) return Counter.err_rdma_tx_ring_full;
  count(Counter.rdma_rc_read_responses);
  return 0;
}

/**
 * Execute an in-sequence request packet. Returns 0, or the Counter of why it was refused
 * (the NAK or RNR NAK has been sent; the caller rolls the sequence state back).
 */
function execute(qpn: u32, c: u32, op: u32, b: u32, psn: u32, plen: u32): u32 {
  const cls = opClass(op);
  const pos = opPos(op);
  const e = opEntry(op);
  const pl = b + <u32>load<u8>(e + OPT_HDRLEN); // OPT_HDRLEN: payload starts after the headers
  const hasImm = load<u8>(e + OPT_IMMDT) != 0;
  if (cls == OpClass.SEND) {
    if (pos == Pos.FIRST || pos == Pos.ONLY) {
      if (rqEmpty(c)) { rnrNak(qpn, c, psn); return Counter.err_rdma_rnr; }
      store<u32>(c + RCC_RECV_OFF, 0);
    }
    const w = rqWqe(c, load<u32>(c + RCC_RQ_HEAD));
    const off = load<u32>(c + RCC_RECV_OFF);
    if (plen > load<u32>(w + RWQE_LEN) - off) { nak(qpn, c, psn, AETH_NAK | NAK_INVALID_REQUEST); return Counter.err_rdma_recv_overflow; }
    if (plen) memory.copy(load<u32>(w + RWQE_CARD) + off, pl, plen);
    store<u32>(c + RCC_RECV_OFF, off + plen);
    if (pos == Pos.LAST || pos == Pos.ONLY) {
      const imm = hasImm ? be32(b + <u32>load<u8>(e + OPT_IMMDT)) : 0;
      cqPush(qpn, load<u64>(w + RWQE_WRID), WcStatus.SUCCESS, WcOp.RECV, off + plen, imm, hasImm ? CQF_IMM : 0);
      store<u32>(c + RCC_RQ_HEAD, load<u32>(c + RCC_RQ_HEAD) + 1);
    }
    return 0;
  }
  if (cls == OpClass.WRITE) {
    if (hasImm && rqEmpty(c)) { rnrNak(qpn, c, psn); return Counter.err_rdma_rnr; }
    if (pos == Pos.FIRST || pos == Pos.ONLY) {
      const r = b + <u32>load<u8>(e + OPT_RETH);
      const len = be32(r + RETH_DMALEN_OFF);
      const va = (<u64>be32(r + RETH_VA_OFF) << 32) | <u64>be32(r + RETH_VA_OFF + 4);
      // A zero-length WRITE touches no memory and needs no valid R_Key (§9.7.4.1.6).
      const dst = len == 0 ? 0 : mrCheck(be32(r + RETH_RKEY_OFF), va, len, MR_REMOTE_WRITE);
      if (dst == MR_DENIED) { nak(qpn, c, psn, AETH_NAK | NAK_REMOTE_ACCESS_ERROR); return mrReason(); }
      store<u32>(c + RCC_WR_ADDR, dst);
      store<u32>(c + RCC_WR_LEFT, len);
    }
    const left = load<u32>(c + RCC_WR_LEFT);
    // The payloads must add up to the RETH's DMA length exactly (§9.7.4.1.6 length errors).
    if (plen > left || ((pos == Pos.LAST || pos == Pos.ONLY) && plen != left)) {
      nak(qpn, c, psn, AETH_NAK | NAK_INVALID_REQUEST);
      return Counter.err_rdma_write_length;
    }
    const dst = load<u32>(c + RCC_WR_ADDR);
    if (plen) memory.copy(dst, pl, plen);
    store<u32>(c + RCC_WR_ADDR, dst + plen);
    store<u32>(c + RCC_WR_LEFT, left - plen);
    if (hasImm) {
      const w = rqWqe(c, load<u32>(c + RCC_RQ_HEAD));
      cqPush(qpn, load<u64>(w + RWQE_WRID), WcStatus.SUCCESS, WcOp.RECV_RDMA_WITH_IMM, 0, be32(b + <u32>load<u8>(e + OPT_IMMDT)), CQF_IMM);
      store<u32>(c + RCC_RQ_HEAD, load<u32>(c + RCC_RQ_HEAD) + 1);
    }
    return 0;
  }
  if (cls == OpClass.READ_REQUEST) {
    const q = qpAddr(qpn);
    store<u32>(q + QP_RQ_MSN, (load<u32>(q + QP_RQ_MSN) + 1) & MSN_MASK); // the responses carry the new MSN
    const r = readRespond(qpn, c, b, psn);
    if (r != 0) store<u32>(q + QP_RQ_MSN, (load<u32>(q + QP_RQ_MSN) - 1) & MSN_MASK);
    return r;
  }
  // Atomics are not supported: NAK invalid request (§9.7.5.2.2).
  nak(qpn, c, psn, AETH_NAK | NAK_INVALID_REQUEST);
  return Counter.err_rdma_unknown_opcode;
}

/**
 * A well-formed RC packet for QP qpn, which the RC engine drives (rx.ts deliver()). Returns
 * 0 when it was taken, or the Counter the receive path logs and counts.
 */
export function rcDeliver(qpn: u32, op: u32, b: u32, psn: u32, plen: u32): u32 {
  const cls = opClass(op);
  if (cls == OpClass.ACK || cls == OpClass.READ_RESPONSE || cls == OpClass.ATOMIC_ACK) return compRecv(qpn, op, b, psn, plen);
  if (cls == OpClass.CNP) return 0;
  const q = qpAddr(qpn);
  const c = rcAddr(qpn);
  const st = q + QP_RQ;
  const mtu = load<u32>(q + QP_MTU);
  let readPsns: u32 = 1;
  if (cls == OpClass.READ_REQUEST) {
    const dl = be32(b + <u32>load<u8>(opEntry(op) + OPT_RETH) + RETH_DMALEN_OFF);
    readPsns = dl == 0 ? 1 : (dl + mtu - 1) / mtu;
  }
  const epsn = load<u32>(st + SEQ_EPSN);
  const scls = load<u32>(st + SEQ_CLASS);
  const r = seqCheck(st, op, psn, plen, mtu, readPsns);
  if (r == Counter.rdma_rx_duplicate) {
    // §9.7.5.1.2: a duplicate READ is executed again (its data may have been lost); any other
    // duplicate gets an ACK of the last PSN seen, so a requester whose ACK was lost moves on.
    if (cls == OpClass.READ_REQUEST) { count(Counter.rdma_rc_dup_reads); readRespond(qpn, c, b, psn); }
    else if (sendAck(qpn, c, (epsn - 1) & PSN_MASK, AETH_ACK | creditCode(c))) count(Counter.rdma_rc_acks_sent);
    return r;
  }
  if (r == Counter.err_rdma_psn_out_of_seq) {
    // §9.7.5.2.1: one NAK for the expected PSN, then silence until it arrives.
    if (load<u32>(c + RCC_NAK_SENT) == 0) nak(qpn, c, epsn, AETH_NAK | NAK_PSN_SEQ_ERROR);
    return r;
  }
  if (r != 0) { nak(qpn, c, psn, AETH_NAK | NAK_INVALID_REQUEST); return r; }
  store<u32>(c + RCC_NAK_SENT, 0);
  const x = execute(qpn, c, op, b, psn, plen);
  if (x != 0) { store<u32>(st + SEQ_EPSN, epsn); store<u32>(st + SEQ_CLASS, scls); return x; }
  if (load<u32>(q + QP_STATE) == QpState.RTR) cmCommEstablished(qpn); // the RTU is late or lost
  if (cls == OpClass.READ_REQUEST) return 0; // the responses acknowledge it
  const pos = opPos(op);
  if (pos == Pos.LAST || pos == Pos.ONLY) store<u32>(q + QP_RQ_MSN, (load<u32>(q + QP_RQ_MSN) + 1) & MSN_MASK);
  const ackreq = (be32(b + BTH_PSN_OFF) & BTH_ACKREQ) != 0;
  // Coalesced: one ACK per QP per receive batch, for its latest PSN (rc.ts ackFlush, after the batch).
  if (qpAckDue(qpn, ackreq, load<u32>(c + RCC_ACK_EVERY))) { store<u32>(c + RCC_ACK_OWED, 1); store<u32>(c + RCC_ACK_PSN, psn); }
  return 0;
}
