// RC transport, shared pieces: the per-QP block (RCQ_*), the virtual time of the current
// poll, completions into the per-QP completion queue, ACK / NAK packets and the AETH codes
// (IBTA vol. 1 §9.7.5.1 credits, §9.7.5.2.8 RNR timer).
import { RCQ_BASE, RCQ_SIZE, MAX_QPS } from "../memmap";
import { Counter } from "../counters";
import { count } from "../stats";
import { Op, AETH_ACK, TXD_OPCODE, TXD_DQP, TXD_PSN, TXD_ACKREQ, TXD_AETH, TXD_LEN, TXD_RETH_LEN, TXD_FROM_PKT, TXD_IMM_FLAG } from "./wire";
import { qpAddr, QP_DEST_QP, QP_RQ_MSN } from "./qp";
import { txPacket, TX_ERROR } from "./tx";
import {
  RCQ_CTRL, RCQ_CQ, RCC_ON, RCC_ACK_OWED, RCC_ACK_PSN, RCC_CQ_PROD, RCC_CQ_CONS, RCC_RQ_TAIL, RCC_RQ_HEAD, RCC_TXD, RC_CQ_DEPTH, CQE_SIZE, CQE_WRID,
  CQE_STATUS, CQE_OPCODE, CQE_BYTE_LEN, CQE_IMM, CQE_QPN, CQE_FLAGS,
} from "./rcdefs";

/** Virtual time (ns) of the poll in progress (rdmaRcPoll). */
let nowNs: f64 = 0;
@inline export function rcNow(): f64 { return nowNs; }
export function rcSetNow(t: f64): void { nowNs = t; }

@inline export function rcAddr(qpn: u32): u32 { return RCQ_BASE + qpn * RCQ_SIZE + RCQ_CTRL; }
@inline export function rcOn(qpn: u32): bool { return qpn < MAX_QPS && load<u32>(rcAddr(qpn) + RCC_ON) != 0; }
@inline export function rcTxd(c: u32): u32 { return c + RCC_TXD; }

/** Append a completion to QP qpn's completion queue; a full queue loses it (counted err_rdma_cq_overflow). */
export function cqPush(qpn: u32, wrid: u64, status: u32, op: u32, len: u32, imm: u32, flags: u32): void {
  const c = rcAddr(qpn);
  const p = load<u32>(c + RCC_CQ_PROD);
  if (p - load<u32>(c + RCC_CQ_CONS) >= RC_CQ_DEPTH) { count(Counter.err_rdma_cq_overflow); return; }
  const e = c - RCQ_CTRL + RCQ_CQ + (p % RC_CQ_DEPTH) * CQE_SIZE;
  store<u64>(e + CQE_WRID, wrid);
  store<u32>(e + CQE_STATUS, status);
  store<u32>(e + CQE_OPCODE, op);
  store<u32>(e + CQE_BYTE_LEN, len);
  store<u32>(e + CQE_IMM, imm);
  store<u32>(e + CQE_QPN, qpn);
  store<u32>(e + CQE_FLAGS, flags);
  store<u32>(c + RCC_CQ_PROD, p + 1);
  count(Counter.rdma_rc_completions);
}

// Credit count encoding (§9.7.5.1 table 44): code i means at least CREDITS[i] receive WQEs.
const CREDITS: StaticArray<u32> = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
  1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768];

/** AETH credit code for the receive WQEs QP qpn has posted and not consumed. */
export function creditCode(c: u32): u32 {
  const n = load<u32>(c + RCC_RQ_TAIL) - load<u32>(c + RCC_RQ_HEAD);
  let code: u32 = 0;
  while (code < 30 && unchecked(CREDITS[code + 1]) <= n) code++;
  return code;
}

// RNR NAK timer codes (§9.7.5.2.8 table 45) in microseconds; code 0 is 655.36 ms.
const RNR_US: StaticArray<f64> = [655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960, 1280, 1920, 2560,
  3840, 5120, 7680, 10240, 15360, 20480, 30720, 40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520];
/** Nanoseconds an RNR NAK with timer code `code` asks the requester to wait. */
@inline export function rnrNs(code: u32): f64 { return unchecked(RNR_US[code & 31]) * 1000.0; }

/**
 * An ACKNOWLEDGE packet for `psn` with AETH syndrome `syn` and the QP's current MSN, built
 * from the QP's transmit descriptor. Returns false when the TX ring is full (counted there).
 */
export function sendAck(qpn: u32, c: u32, psn: u32, syn: u32): bool {
  const d = rcTxd(c);
  const q = qpAddr(qpn);
  store<u8>(d + TXD_OPCODE, <u8>Op.RC_ACK);
  store<u32>(d + TXD_DQP, load<u32>(q + QP_DEST_QP));
  store<u32>(d + TXD_PSN, psn);
  store<u32>(d + TXD_ACKREQ, 0);
  store<u32>(d + TXD_AETH, (syn << 24) | (load<u32>(q + QP_RQ_MSN) & 0xffffff));
  store<u32>(d + TXD_LEN, 0);
  store<u32>(d + TXD_RETH_LEN, 0);
  store<u32>(d + TXD_FROM_PKT, 0);
  store<u32>(d + TXD_IMM_FLAG, 0);
  return txPacket(d) != TX_ERROR;
}

/**
 * Send the ACK QP qpn owes (RCC_ACK_OWED), if any: cumulative, for the latest PSN the batch
 * accepted (§9.7.5.1.1 allows coalescing), with the MSN and credits as they are now. A full TX
 * ring keeps it owed for the next round.
 */
export function ackFlush(qpn: u32, c: u32): void {
  if (load<u32>(c + RCC_ACK_OWED) == 0) return;
  if (!sendAck(qpn, c, load<u32>(c + RCC_ACK_PSN), AETH_ACK | creditCode(c))) return;
  store<u32>(c + RCC_ACK_OWED, 0);
  count(Counter.rdma_rc_acks_sent);
}
