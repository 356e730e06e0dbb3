// Receiver-side sequence check of one RC packet stream (IBTA vol. 1 §9.7.5 responder, §9.7.6
// completer for read responses): PSN against the expected PSN (24-bit modular, §9.7.1),
// opcode sequence (FIRST → MIDDLE* → LAST, or ONLY; no new message inside one, §9.7.5.1.1)
// and lengths (FIRST/MIDDLE carry exactly the path MTU, LAST 1..MTU, ONLY 0..MTU, §9.7.5.1.1
// "length errors"). The state is two u32 words at `st`: expected PSN, and the OpClass of the
// message in progress (0 = between messages).
import { Counter } from "../counters";
import { Pos, OpClass, PSN_MASK } from "./wire";
import { opPos, opClass } from "./opcodes";

export const SEQ_EPSN: u32 = 0;
export const SEQ_CLASS: u32 = 4;

/** a - b in 24-bit PSN space as a signed distance (-2^23 .. 2^23-1). */
@inline export function psnDiff(a: u32, b: u32): i32 { return (<i32>((a - b) << 8)) >> 8; }

/**
 * Check packet (op, psn, payload length) against the stream state at st at path MTU `mtu`.
 * `readPsns` is the number of PSNs a READ REQUEST consumes (its response packets; 1 otherwise).
 * Returns 0 and advances the state when the packet is the next one; otherwise the Counter of
 * what is wrong, state unchanged: rdma_rx_duplicate (PSN already seen: re-acknowledge),
 * err_rdma_psn_out_of_seq (PSN ahead: NAK PSN sequence error), err_rdma_opcode_seq,
 * err_rdma_bad_length (NAK invalid request).
 */
export function seqCheck(st: u32, op: u32, psn: u32, plen: u32, mtu: u32, readPsns: u32): u32 {
  const d = psnDiff(psn, load<u32>(st + SEQ_EPSN));
  if (d < 0) return Counter.rdma_rx_duplicate;
  if (d > 0) return Counter.err_rdma_psn_out_of_seq;
  const pos = opPos(op);
  const cls = opClass(op);
  const cur = load<u32>(st + SEQ_CLASS);
  if (pos == Pos.MIDDLE || pos == Pos.LAST) {
    if (cur != cls) return Counter.err_rdma_opcode_seq;
  } else if (cur != 0) {
    return Counter.err_rdma_opcode_seq; // FIRST, ONLY or a single-packet request inside a message
  }
  if (pos == Pos.FIRST || pos == Pos.MIDDLE) {
    if (plen != mtu) return Counter.err_rdma_bad_length;
  } else if (pos == Pos.LAST) {
    if (plen == 0 || plen > mtu) return Counter.err_rdma_bad_length;
  } else if (pos == Pos.ONLY) {
    if (plen > mtu) return Counter.err_rdma_bad_length;
  }
  store<u32>(st + SEQ_CLASS, pos == Pos.FIRST || pos == Pos.MIDDLE ? cls : 0);
  store<u32>(st + SEQ_EPSN, (psn + (cls == OpClass.READ_REQUEST ? readPsns : 1)) & PSN_MASK);
  return 0;
}
