// Transmit: one packet, or one message cut at the path MTU into FIRST/MIDDLE/LAST (or ONLY)
// packets with consecutive PSNs (24-bit wrap) and pad counts (IBTA vol. 1 §9.4, §9.5, §9.7.7),
// built straight into the TX frame ring.
import { Counter } from "../counters";
import { count, countN } from "../stats";
import { NET_FRAME_MAX } from "../memmap";
import { txSpace, txNextFrame, txCommit } from "../net/ring";
import {
  Op, OpClass, Pos, PSN_MASK, PMTU_MIN, PMTU_MAX, TXD_OPCODE, TXD_PSN, TXD_ACKREQ, TXD_PAYLOAD, TXD_LEN, TXD_MTU,
  TXD_IMM_FLAG, TXD_PORT, TXD_RETH_LEN, TXD_FROM_PKT, OPF_ACKREQ, OPF_PAYLOAD, OPT_HDRLEN,
} from "./wire";
import { opValid, opFlags, opEntry } from "./opcodes";
import { buildPacket, FRAME_OVERHEAD } from "./frame";

export const TX_ERROR: u32 = 0xffffffff;
const MAX_PAD: u32 = 3; // pad to a multiple of 4 bytes (§9.5: PadCnt is 2 bits)

/** Packets a message of `len` bytes takes at path MTU `mtu` (a zero-length message is one ONLY packet). */
@inline export function segCount(len: u32, mtu: u32): u32 { return len == 0 ? 1 : (len + mtu - 1) / mtu; }

@inline function validMtu(mtu: u32): bool { return mtu >= PMTU_MIN && mtu <= PMTU_MAX && popcnt(mtu) == 1; }

/** Opcode of packet `pos` of a message of class `cls` (SEND, WRITE, READ_RESPONSE), immediate or not. */
export function segOpcode(cls: u32, pos: u32, imm: bool): u32 {
  if (cls == OpClass.SEND) {
    if (pos == Pos.FIRST) return Op.RC_SEND_FIRST;
    if (pos == Pos.MIDDLE) return Op.RC_SEND_MIDDLE;
    if (pos == Pos.LAST) return imm ? Op.RC_SEND_LAST_IMM : Op.RC_SEND_LAST;
    return imm ? Op.RC_SEND_ONLY_IMM : Op.RC_SEND_ONLY;
  }
  if (cls == OpClass.WRITE) {
    if (pos == Pos.FIRST) return Op.RC_WRITE_FIRST;
    if (pos == Pos.MIDDLE) return Op.RC_WRITE_MIDDLE;
    if (pos == Pos.LAST) return imm ? Op.RC_WRITE_LAST_IMM : Op.RC_WRITE_LAST;
    return imm ? Op.RC_WRITE_ONLY_IMM : Op.RC_WRITE_ONLY;
  }
  if (pos == Pos.FIRST) return Op.RC_READ_RESPONSE_FIRST;
  if (pos == Pos.MIDDLE) return Op.RC_READ_RESPONSE_MIDDLE;
  if (pos == Pos.LAST) return Op.RC_READ_RESPONSE_LAST;
  return Op.RC_READ_RESPONSE_ONLY;
}

/**
 * One packet from descriptor d (TXD_OPCODE is the opcode; PSN, AckReq, payload and the
 * extension header fields from the descriptor; the RETH DMA length is TXD_RETH_LEN, or the
 * payload length when that is 0 and the opcode carries payload).
 * Returns the frame length, or TX_ERROR (counted) when the opcode is unknown, the packet does
 * not fit a frame slot, or the TX ring is full.
 */
export function txPacket(d: u32): u32 {
  const op = <u32>load<u8>(d + TXD_OPCODE);
  const len = load<u32>(d + TXD_LEN);
  if (!opValid(op) || ((opFlags(op) & OPF_PAYLOAD) == 0 && len != 0)
    || len > NET_FRAME_MAX - FRAME_OVERHEAD - <u32>load<u8>(opEntry(op) + OPT_HDRLEN) - MAX_PAD) {
    count(Counter.err_rdma_tx_bad_desc);
    return TX_ERROR;
  }
  const f = txNextFrame();
  if (f == 0) { count(Counter.err_rdma_tx_ring_full); return TX_ERROR; }
  const n = buildPacket(d, f, op, load<u32>(d + TXD_PSN), load<u32>(d + TXD_ACKREQ) != 0, load<u32>(d + TXD_PAYLOAD), len,
    load<u32>(d + TXD_RETH_LEN) != 0 || (opFlags(op) & OPF_PAYLOAD) == 0 ? load<u32>(d + TXD_RETH_LEN) : len);
  txCommit(n, load<u32>(d + TXD_PORT));
  count(Counter.rdma_tx_frames);
  return n;
}

/**
 * One RC message from descriptor d: TXD_OPCODE holds its OpClass (SEND, WRITE or
 * READ_RESPONSE), TXD_LEN its bytes at TXD_PAYLOAD, TXD_MTU the path MTU, TXD_PSN the first
 * PSN. The RETH (WRITE) goes on the FIRST/ONLY packet with the whole length, the AETH (READ
 * RESPONSE) on FIRST/LAST/ONLY, ImmDt (TXD_IMM_FLAG) and AckReq (TXD_ACKREQ) on the last.
 * TXD_FROM_PKT > 0 resends the message from that packet on, with the PSNs, opcodes and bytes
 * those packets had (go-back-N, §9.7.6.1.3). All packets go into the TX ring or none do. Writes
 * the PSN after the message back to TXD_PSN and returns the number of packets sent, or
 * TX_ERROR (counted).
 */
export function txMessage(d: u32): u32 {
  const cls = <u32>load<u8>(d + TXD_OPCODE);
  const len = load<u32>(d + TXD_LEN);
  const mtu = load<u32>(d + TXD_MTU);
  if ((cls != OpClass.SEND && cls != OpClass.WRITE && cls != OpClass.READ_RESPONSE) || !validMtu(mtu)) {
    count(Counter.err_rdma_tx_bad_desc);
    return TX_ERROR;
  }
  const npk = segCount(len, mtu);
  const from = load<u32>(d + TXD_FROM_PKT);
  if (from >= npk) { count(Counter.err_rdma_tx_bad_desc); return TX_ERROR; }
  if (txSpace() < npk - from) { count(Counter.err_rdma_tx_ring_full); return TX_ERROR; }
  const imm = load<u32>(d + TXD_IMM_FLAG) != 0;
  const ackreq = load<u32>(d + TXD_ACKREQ) != 0;
  const port = load<u32>(d + TXD_PORT);
  const psn0 = load<u32>(d + TXD_PSN) & PSN_MASK;
  let psn = (psn0 + from) & PSN_MASK;
  let src = load<u32>(d + TXD_PAYLOAD) + from * mtu;
  let left = len - from * mtu;
  for (let i: u32 = from; i < npk; i++) {
    const pos = npk == 1 ? Pos.ONLY : i == 0 ? Pos.FIRST : i == npk - 1 ? Pos.LAST : Pos.MIDDLE;
    const op = segOpcode(cls, pos, imm);
    const n = left < mtu ? left : mtu;
    const last = i == npk - 1;
    const f = txNextFrame();
    const fl = buildPacket(d, f, op, psn, last && ackreq && (opFlags(op) & OPF_ACKREQ) != 0, src, n, len);
    txCommit(fl, port);
    psn = (psn + 1) & PSN_MASK;
    src += n;
    left -= n;
  }
  store<u32>(d + TXD_PSN, psn);
  countN(Counter.rdma_tx_frames, <u64>(npk - from));
  return npk - from;
}
