// NVMe queue state in the per-queue entries of the memory map (queueAddr), the
// controller's private words (FUNC_PRIVATE) and completion posting.
// Queue entry of index y holds SQ y in its first half and CQ y in its second half.
import { BAR_BASE, BAR_SIZE, FUNC_PRIVATE_OFF, POLLING_BASE } from "../memmap";
import { funcAddr, queueAddr, doorbellSet } from "../pcie/func";
import { irqSignal } from "../pcie/irq";
import { Counter } from "../counters";
import { count } from "../stats";
import { NVME_DB_BASE, NVME_DB_STRIDE, NVME_DB_VALUE_MASK } from "./regs";
import { CQE_SHIFT, CQE_DW0, CQE_DW1, CQE_DW2, CQE_DW3, CQE_SQID_SHIFT, CQE_PHASE_SHIFT, CQE_STATUS_SHIFT } from "./spec";

// ---- SQ half ----
/**
 * SQ lifecycle (DESIGN rule 6), one transition function (sqSetState):
 *   NONE ──Create I/O SQ / enable──▶ ACTIVE ──CQ has no room──▶ WAIT_CQ ──CQ head moves──▶ ACTIVE
 *   ACTIVE | WAIT_CQ ──Delete I/O SQ / reset──▶ NONE
 */
export enum SqState { NONE = 0, ACTIVE = 1, WAIT_CQ = 2 }
export const SQ_STATE: u32 = 0;
export const SQ_RING: u32 = 4; // card offset of the guest's SQ (window-checked at creation)
export const SQ_SIZE: u32 = 8; // entries
export const SQ_HEAD: u32 = 12; // next entry to consume
export const SQ_CQID: u32 = 16;
export const SQ_INFLIGHT: u32 = 20; // commands consumed and not yet completed
export const SQ_BADTAIL: u32 = 24; // last invalid tail counted (0: none; a bad tail is ≥ 2)
export const SQ_HALF: u32 = 64;
// ---- CQ half ----
export const CQ_ACTIVE: u32 = 64;
export const CQ_RING: u32 = 68;
export const CQ_SIZE: u32 = 72;
export const CQ_TAIL: u32 = 76; // next slot the controller writes
export const CQ_HEAD: u32 = 80; // last valid head the host reported
export const CQ_PHASE: u32 = 84; // phase tag of the current pass
export const CQ_IV: u32 = 88;
export const CQ_IEN: u32 = 92;
export const CQ_NSQ: u32 = 96; // SQs bound to this CQ
export const CQ_RESERVED: u32 = 100; // slots promised to commands in flight
export const CQ_WAITERS: u32 = 104; // bitmap of SQs stalled on this CQ
export const CQ_POSTED: u32 = 108; // CQEs not yet announced by an interrupt
export const CQ_BADHEAD: u32 = 112; // last invalid head counted (NO_BAD_HEAD: none)
export const NO_BAD_HEAD: u32 = 0xffffffff;
export const CQ_HALF: u32 = 64;

// ---- controller words in FUNC_PRIVATE (32 bytes) ----
export const P_GEN: u32 = 0; // bumped on every reset; requests carry it (stale completions are dropped)
export const P_NQ_GRANTED: u32 = 4; // I/O queue pairs granted by Set Features 07h (0 = not yet set)
export const P_DIRTY: u32 = 8; // bitmap of CQs with unannounced completions
export const P_IN_SERVICE: u32 = 12; // 1 inside nvmeServiceQueue
export const P_COALESCE: u32 = 16; // Interrupt Coalescing feature value (CDW11)
export const P_VWC: u32 = 20; // Volatile Write Cache enable
export const P_DBBUF_SHADOW: u32 = 24; // card offset of the shadow doorbell page (0 = none)
export const P_DBBUF_EVENT: u32 = 28; // card offset of the EventIdx page
export const P_SIZE: u32 = 32;

@inline export function sqState(f: u32, s: u32): u32 { return load<u32>(queueAddr(f, s) + SQ_STATE); }
@inline export function sqSetState(f: u32, s: u32, to: SqState): void { store<u32>(queueAddr(f, s) + SQ_STATE, to); }

@inline export function priv(f: u32): u32 { return funcAddr(f) + FUNC_PRIVATE_OFF; }
@inline export function barAddr(f: u32): u32 { return BAR_BASE + f * BAR_SIZE; }

/** SQ y tail doorbell as the host last wrote it (shadow doorbell for I/O queues when configured). */
@inline export function sqTailDoorbell(f: u32, y: u32): u32 {
  const sh = load<u32>(priv(f) + P_DBBUF_SHADOW);
  if (sh != 0 && y != 0) return load<u32>(sh + 2 * y * NVME_DB_STRIDE);
  return load<u32>(barAddr(f) + NVME_DB_BASE + 2 * y * NVME_DB_STRIDE);
}

@inline export function cqHeadDoorbell(f: u32, y: u32): u32 {
  const sh = load<u32>(priv(f) + P_DBBUF_SHADOW);
  if (sh != 0 && y != 0) return load<u32>(sh + (2 * y + 1) * NVME_DB_STRIDE);
  return load<u32>(barAddr(f) + NVME_DB_BASE + (2 * y + 1) * NVME_DB_STRIDE);
}

/**
 * Shadow doorbell EventIdx of SQ y (base §5.9): the host rings the MMIO doorbell only
 * when its new tail passes EventIdx. With a doorbell, ask to be rung after `tail`; in
 * polling mode stay one behind, so the host never needs to ring.
 */
@inline export function sqEventIdx(f: u32, y: u32, tail: u32): void {
  const ev = load<u32>(priv(f) + P_DBBUF_EVENT);
  if (ev == 0 || y == 0) return;
  const polled = (load<u32>(POLLING_BASE + (f << 2)) >> y) & 1;
  store<u32>(ev + 2 * y * NVME_DB_STRIDE, (tail - polled) & NVME_DB_VALUE_MASK);
}

/** Ask for the CQ y head doorbell at the host's next head update (an SQ waits for room). */
@inline export function cqEventIdx(f: u32, y: u32, head: u32): void {
  const ev = load<u32>(priv(f) + P_DBBUF_EVENT);
  if (ev != 0 && y != 0) store<u32>(ev + (2 * y + 1) * NVME_DB_STRIDE, head);
}

@inline export function cqUsed(c: u32): u32 {
  const size = load<u32>(c + CQ_SIZE);
  return (load<u32>(c + CQ_TAIL) + size - load<u32>(c + CQ_HEAD)) % size;
}

/** CQ slots neither holding an unconsumed CQE nor promised to a command in flight. */
@inline export function cqRoom(c: u32): u32 {
  const busy = cqUsed(c) + load<u32>(c + CQ_RESERVED);
  const cap = load<u32>(c + CQ_SIZE) - 1; // a full CQ keeps one slot empty (base §3.3.1.5)
  return cap > busy ? cap - busy : 0;
}

/** Write one CQE into a reserved slot of CQ cq and flip the phase at the wrap. */
@inline export function cqPost(f: u32, cq: u32, dw0: u32, sq: u32, cid: u32, status: u32): void {
  const c = queueAddr(f, cq);
  const tail = load<u32>(c + CQ_TAIL);
  const e = load<u32>(c + CQ_RING) + (tail << CQE_SHIFT);
  const phase = load<u32>(c + CQ_PHASE);
  const sqhd = load<u32>(queueAddr(f, sq) + SQ_HEAD);
  store<u32>(e + CQE_DW0, dw0);
  store<u32>(e + CQE_DW1, 0);
  store<u32>(e + CQE_DW2, sqhd | (sq << CQE_SQID_SHIFT));
  store<u32>(e + CQE_DW3, cid | (phase << CQE_PHASE_SHIFT) | (status << CQE_STATUS_SHIFT));
  const next = tail + 1;
  if (next == load<u32>(c + CQ_SIZE)) { store<u32>(c + CQ_TAIL, 0); store<u32>(c + CQ_PHASE, phase ^ 1); }
  else store<u32>(c + CQ_TAIL, next);
  store<u32>(c + CQ_RESERVED, load<u32>(c + CQ_RESERVED) - 1);
  store<u32>(c + CQ_POSTED, load<u32>(c + CQ_POSTED) + 1);
  const p = priv(f);
  store<u32>(p + P_DIRTY, load<u32>(p + P_DIRTY) | (1 << cq));
  count(Counter.nvme_cqes_posted);
  // Outside a service call (host IO reaped by poll) the CQ's queue bit gets the interrupt out.
  if (load<u32>(p + P_IN_SERVICE) == 0) doorbellSet(f, cq);
}

/** One interrupt signal per CQ with new entries (CQ IEN honoured). */
export function cqAnnounce(f: u32): void {
  const p = priv(f);
  let bits = load<u32>(p + P_DIRTY);
  store<u32>(p + P_DIRTY, 0);
  while (bits != 0) {
    const cq = <u32>ctz(bits);
    bits &= bits - 1;
    const c = queueAddr(f, cq);
    const n = load<u32>(c + CQ_POSTED);
    store<u32>(c + CQ_POSTED, 0);
    if (load<u32>(c + CQ_ACTIVE) != 0 && load<u32>(c + CQ_IEN) != 0) irqSignal(f, load<u32>(c + CQ_IV), n);
  }
}

/**
 * Take the host's CQ head doorbell. A head outside the queue or ahead of the
 * entries posted is ignored and counted (no CQE can report it). Returns true when
 * the head moved, so stalled SQs can go on.
 */
export function cqTakeHead(f: u32, cq: u32): bool {
  const c = queueAddr(f, cq);
  const head = cqHeadDoorbell(f, cq);
  const old = load<u32>(c + CQ_HEAD);
  if (head == old) return false;
  const size = load<u32>(c + CQ_SIZE);
  if (head >= size) {
    if (load<u32>(c + CQ_BADHEAD) != head) { count(Counter.err_nvme_bad_cq_head); store<u32>(c + CQ_BADHEAD, head); }
    return false;
  }
  // The host may only release entries the controller posted: old .. tail.
  if ((head + size - old) % size > cqUsed(c)) {
    if (load<u32>(c + CQ_BADHEAD) != head) { count(Counter.err_nvme_cq_head_ahead); store<u32>(c + CQ_BADHEAD, head); }
    return false;
  }
  store<u32>(c + CQ_HEAD, head);
  store<u32>(c + CQ_BADHEAD, NO_BAD_HEAD);
  return true;
}
