// The one opcode table (IBTA vol. 1 §9.4.1 table 38 and §9.2/§9.3 for the headers each
// opcode carries), in the spirit of Linux rxe_opcode.c: opcode → extension headers and their
// offsets, total header length, payload, position in the message, operation class, AckReq,
// valid on RC / UD. Built once at start-up into asc static data; 16 bytes per opcode.
// An opcode whose entry is not valid is dropped and counted (err_rdma_unknown_opcode).
import {
  Op, Pos, OpClass, BTH_LEN, RETH_LEN, AETH_LEN, IMMDT_LEN, IETH_LEN, DETH_LEN, ATOMICETH_LEN, ATOMICACKETH_LEN,
  OPT_ENTRY_SIZE, OPT_VALID, OPT_CLASS, OPT_POS, OPT_HDRLEN, OPT_FLAGS, OPT_RETH, OPT_AETH, OPT_IMMDT, OPT_IETH,
  OPT_DETH, OPT_ATOMICETH, OPT_ATOMICACKETH, OPF_RETH, OPF_AETH, OPF_IMMDT, OPF_IETH, OPF_DETH, OPF_ATOMICETH,
  OPF_ATOMICACKETH, OPF_PAYLOAD, OPF_REQUEST, OPF_ACKREQ, OPF_RC, OPF_UD, OPF_SOLICIT, OPF_CNP, OPT_CNP, CNP_RESERVED_LEN,
} from "./wire";

export const OPCODE_TABLE: u32 = <u32>memory.data(256 * OPT_ENTRY_SIZE, 16);

@inline export function opEntry(op: u32): u32 { return OPCODE_TABLE + ((op & 0xff) << 4); }
@inline export function opValid(op: u32): bool { return load<u8>(opEntry(op), OPT_VALID) != 0; }
@inline export function opFlags(op: u32): u32 { return <u32>load<u16>(opEntry(op), OPT_FLAGS); }
@inline export function opHdrLen(op: u32): u32 { return <u32>load<u8>(opEntry(op), OPT_HDRLEN); }
@inline export function opPos(op: u32): u32 { return <u32>load<u8>(opEntry(op), OPT_POS); }
@inline export function opClass(op: u32): u32 { return <u32>load<u8>(opEntry(op), OPT_CLASS); }

/**
 * Defines one opcode. Extension headers follow the BTH in the order of §9.2 figure 26:
 * DETH, RETH, AtomicETH, AETH, AtomicAckETH, ImmDt, IETH.
 */
function def(op: u32, cls: OpClass, pos: Pos, flags: u32): void {
  const e = opEntry(op);
  let off = BTH_LEN;
  if (flags & OPF_DETH) { store<u8>(e, <u8>off, OPT_DETH); off += DETH_LEN; }
  if (flags & OPF_RETH) { store<u8>(e, <u8>off, OPT_RETH); off += RETH_LEN; }
  if (flags & OPF_ATOMICETH) { store<u8>(e, <u8>off, OPT_ATOMICETH); off += ATOMICETH_LEN; }
  if (flags & OPF_AETH) { store<u8>(e, <u8>off, OPT_AETH); off += AETH_LEN; }
  if (flags & OPF_ATOMICACKETH) { store<u8>(e, <u8>off, OPT_ATOMICACKETH); off += ATOMICACKETH_LEN; }
  if (flags & OPF_IMMDT) { store<u8>(e, <u8>off, OPT_IMMDT); off += IMMDT_LEN; }
  if (flags & OPF_IETH) { store<u8>(e, <u8>off, OPT_IETH); off += IETH_LEN; }
  if (flags & OPF_CNP) { store<u8>(e, <u8>off, OPT_CNP); off += CNP_RESERVED_LEN; }
  store<u8>(e, 1, OPT_VALID);
  store<u8>(e, <u8>cls, OPT_CLASS);
  store<u8>(e, <u8>pos, OPT_POS);
  store<u8>(e, <u8>off, OPT_HDRLEN);
  store<u16>(e, <u16>flags, OPT_FLAGS);
}

const RQ: u32 = OPF_REQUEST | OPF_RC; // an RC request
const RS: u32 = OPF_RC; // an RC response
const PL: u32 = OPF_PAYLOAD;
const AR: u32 = OPF_ACKREQ;
const SE: u32 = OPF_SOLICIT;

// RC SEND (§9.4.1, §9.5): FIRST/MIDDLE carry no extension header; LAST/ONLY may add ImmDt or IETH.
def(Op.RC_SEND_FIRST, OpClass.SEND, Pos.FIRST, RQ | PL);
def(Op.RC_SEND_MIDDLE, OpClass.SEND, Pos.MIDDLE, RQ | PL);
def(Op.RC_SEND_LAST, OpClass.SEND, Pos.LAST, RQ | PL | AR | SE);
def(Op.RC_SEND_LAST_IMM, OpClass.SEND, Pos.LAST, RQ | PL | AR | SE | OPF_IMMDT);
def(Op.RC_SEND_ONLY, OpClass.SEND, Pos.ONLY, RQ | PL | AR | SE);
def(Op.RC_SEND_ONLY_IMM, OpClass.SEND, Pos.ONLY, RQ | PL | AR | SE | OPF_IMMDT);
def(Op.RC_SEND_LAST_INV, OpClass.SEND, Pos.LAST, RQ | PL | AR | SE | OPF_IETH);
def(Op.RC_SEND_ONLY_INV, OpClass.SEND, Pos.ONLY, RQ | PL | AR | SE | OPF_IETH);
// RC RDMA WRITE (§9.4.3): RETH on FIRST and ONLY.
def(Op.RC_WRITE_FIRST, OpClass.WRITE, Pos.FIRST, RQ | PL | OPF_RETH);
def(Op.RC_WRITE_MIDDLE, OpClass.WRITE, Pos.MIDDLE, RQ | PL);
def(Op.RC_WRITE_LAST, OpClass.WRITE, Pos.LAST, RQ | PL | AR);
def(Op.RC_WRITE_LAST_IMM, OpClass.WRITE, Pos.LAST, RQ | PL | AR | SE | OPF_IMMDT);
def(Op.RC_WRITE_ONLY, OpClass.WRITE, Pos.ONLY, RQ | PL | AR | OPF_RETH);
def(Op.RC_WRITE_ONLY_IMM, OpClass.WRITE, Pos.ONLY, RQ | PL | AR | SE | OPF_RETH | OPF_IMMDT);
// RC RDMA READ (§9.4.4): the request carries a RETH and no payload; responses carry an AETH on
// FIRST, LAST and ONLY, none on MIDDLE.
def(Op.RC_READ_REQUEST, OpClass.READ_REQUEST, Pos.NONE, RQ | AR | OPF_RETH);
def(Op.RC_READ_RESPONSE_FIRST, OpClass.READ_RESPONSE, Pos.FIRST, RS | PL | OPF_AETH);
def(Op.RC_READ_RESPONSE_MIDDLE, OpClass.READ_RESPONSE, Pos.MIDDLE, RS | PL);
def(Op.RC_READ_RESPONSE_LAST, OpClass.READ_RESPONSE, Pos.LAST, RS | PL | OPF_AETH);
def(Op.RC_READ_RESPONSE_ONLY, OpClass.READ_RESPONSE, Pos.ONLY, RS | PL | OPF_AETH);
// ACK (§9.7.5.1) and atomics (§9.4.5).
def(Op.RC_ACK, OpClass.ACK, Pos.NONE, RS | OPF_AETH);
def(Op.RC_ATOMIC_ACK, OpClass.ATOMIC_ACK, Pos.NONE, RS | OPF_AETH | OPF_ATOMICACKETH);
def(Op.RC_CMP_SWAP, OpClass.ATOMIC, Pos.NONE, RQ | AR | OPF_ATOMICETH);
def(Op.RC_FETCH_ADD, OpClass.ATOMIC, Pos.NONE, RQ | AR | OPF_ATOMICETH);
// UD SEND ONLY (§9.4.1, §9.8): DETH carries the Q_Key and the source QP.
def(Op.UD_SEND_ONLY, OpClass.SEND, Pos.ONLY, OPF_REQUEST | OPF_UD | PL | SE | OPF_DETH);
def(Op.UD_SEND_ONLY_IMM, OpClass.SEND, Pos.ONLY, OPF_REQUEST | OPF_UD | PL | SE | OPF_DETH | OPF_IMMDT);

// CNP (Annex A17.9.2): BTH (dest QP, PSN 0) and 16 reserved bytes; it tells a reaction point to
// slow down and is never part of a message, so no sequence check applies.
def(Op.CNP, OpClass.CNP, Pos.NONE, OPF_RC | OPF_UD | OPF_CNP);

/** Opcode table entry address of `op` (16 bytes, wire.ts OPT_*), for the host and tests. */
export function rdmaOpcodeEntry(op: u32): u32 { return opEntry(op); }
