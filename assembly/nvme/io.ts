// NVMe controller queue service and the NVM I/O command set.
// On a doorbell (or every poll in polling mode) new SQEs are copied in one batch
// from guest RAM into the queue's shadow ring in card memory (shadowAddr), then
// parsed from the shadow copy only, so the guest cannot change a command while it
// is being checked. A CQ slot is reserved for every command taken, so completions
// never find their CQ full; an SQ whose CQ has no room stalls until the CQ head moves.
import { FUNC_ENABLED_OFF } from "../memmap";
import { Counter } from "../counters";
import { count, countN } from "../stats";
import { funcAddr, funcGuest, funcDisk, queueAddr, shadowAddr, scratchAddr, doorbellSet } from "../pcie/func";
import { reqAlloc, reqAddr, reqFree, REQ_NONE, BlkOp, BlkStatus, R_FUNC, R_QUEUE, R_ID, R_OP, R_LBA,
  R_NBLOCKS, R_STATUS, R_DISK, R_AUX0, R_AUX1 } from "../blk/req";
import { blkSubmit, diskBlocks, diskBlockShift } from "../blk/disk";
import * as R from "./regs";
import * as S from "./spec";
import * as Q from "./queue";
import { prpMap, segsGather } from "./prp";
import { adminCommand, adminDw0 } from "./admin";

// R_AUX0 of an NVMe request: what kind of request it is.
const AUX_PLAIN: u32 = 0;
const AUX_DSM_LEADER: u32 = 0x40000000; // a DSM command; R_NBLOCKS counts its ranges in flight
const AUX_DSM_CHILD: u32 = 0x80000000; // one DSM range; low bits = leader request index
const AUX_INDEX_MASK: u32 = 0x3fffffff;
const NO_CQE: u32 = 0xffffffff; // command still running: its CQE comes from nvmeIoComplete

@inline function gen(f: u32): u32 { return load<u32>(Q.priv(f) + Q.P_GEN); }

// ---- queue service ----

export function nvmeServiceQueue(f: u32, q: u32, budget: u32): u32 {
  if (load<u32>(funcAddr(f) + FUNC_ENABLED_OFF) == 0) return 0;
  const p = Q.priv(f);
  store<u32>(p + Q.P_IN_SERVICE, 1);
  const a = queueAddr(f, q);
  let n: u32 = 0;
  if (load<u32>(a + Q.CQ_ACTIVE) != 0 && Q.cqTakeHead(f, q)) n += resumeWaiters(f, q, budget);
  if (Q.sqState(f, q) != Q.SqState.NONE) {
    if (n < budget) n += sqService(f, q, budget - n);
    else doorbellSet(f, q);
  }
  Q.cqAnnounce(f);
  store<u32>(p + Q.P_IN_SERVICE, 0);
  return n;
}

/** The CQ head moved: SQs that stalled on this CQ go on. */
function resumeWaiters(f: u32, cq: u32, budget: u32): u32 {
  const c = queueAddr(f, cq);
  let bits = load<u32>(c + Q.CQ_WAITERS);
  store<u32>(c + Q.CQ_WAITERS, 0);
  let n: u32 = 0;
  while (bits != 0) {
    const s = <u32>ctz(bits);
    bits &= bits - 1;
    if (Q.sqState(f, s) == Q.SqState.WAIT_CQ) Q.sqSetState(f, s, Q.SqState.ACTIVE);
    if (n < budget) n += sqService(f, s, budget - n);
    else doorbellSet(f, s);
  }
  return n;
}

/** Copy ring slots [head, head+n) of SQ s into the same slots of its shadow ring. */
@inline function fetch(f: u32, s: u32, ring: u32, size: u32, head: u32, n: u32): void {
  const sh = shadowAddr(f, s);
  const first = min(n, size - head);
  memory.copy(sh + (head << S.SQE_SHIFT), ring + (head << S.SQE_SHIFT), first << S.SQE_SHIFT);
  if (n > first) memory.copy(sh, ring, (n - first) << S.SQE_SHIFT);
  countN(Counter.nvme_sqes_fetched, n);
}

function sqService(f: u32, s: u32, budget: u32): u32 {
  const a = queueAddr(f, s);
  const size = load<u32>(a + Q.SQ_SIZE);
  const tail = Q.sqTailDoorbell(f, s);
  if (tail >= size) {
    // No CQE can report a bad doorbell value: count it once and ignore it (base §3.3.1.2).
    if (load<u32>(a + Q.SQ_BADTAIL) != tail) { count(Counter.err_nvme_bad_sq_tail); store<u32>(a + Q.SQ_BADTAIL, tail); }
    return 0;
  }
  store<u32>(a + Q.SQ_BADTAIL, 0);
  Q.sqEventIdx(f, s, tail);
  let head = load<u32>(a + Q.SQ_HEAD);
  if (head == tail) return 0;
  const cq = load<u32>(a + Q.SQ_CQID);
  const c = queueAddr(f, cq);
  const avail = (tail + size - head) % size;
  const room = Q.cqRoom(c);
  const n = min(min(avail, budget), room);
  if (room != 0 && Q.sqState(f, s) == Q.SqState.WAIT_CQ) Q.sqSetState(f, s, Q.SqState.ACTIVE);
  if (n > 0) fetch(f, s, load<u32>(a + Q.SQ_RING), size, head, n);
  const sh = shadowAddr(f, s);
  let done: u32 = 0;
  if (s == 0) {
    for (; done < n; done++) {
      const e = sh + (head << S.SQE_SHIFT);
      head = consume(a, c, head, size);
      const st = adminCommand(f, e);
      Q.cqPost(f, 0, adminDw0, 0, load<u16>(e + S.SQE_CID), st);
    }
  } else {
    const g = funcGuest(f);
    const d = funcDisk(f);
    const gn = gen(f);
    for (; done < n; done++) {
      const e = sh + (head << S.SQE_SHIFT);
      const r = reqAlloc(f, s, load<u16>(e + S.SQE_CID));
      if (r == REQ_NONE) { count(Counter.err_no_request_slot); break; }
      head = consume(a, c, head, size);
      store<u32>(a + Q.SQ_INFLIGHT, load<u32>(a + Q.SQ_INFLIGHT) + 1);
      ioCommand(f, g, d, gn, r, e);
    }
  }
  if (done < avail) {
    if (done == room) stall(f, a, c, s);
    else doorbellSet(f, s); // budget or request pool ran out: come back next poll
  }
  return done;
}

/** Take the SQE at head: advance SQ head (reported as SQHD) and reserve a CQ slot. */
@inline function consume(a: u32, c: u32, head: u32, size: u32): u32 {
  const next = head + 1 == size ? 0 : head + 1;
  store<u32>(a + Q.SQ_HEAD, next);
  store<u32>(c + Q.CQ_RESERVED, load<u32>(c + Q.CQ_RESERVED) + 1);
  return next;
}

function stall(f: u32, a: u32, c: u32, s: u32): void {
  store<u32>(c + Q.CQ_WAITERS, load<u32>(c + Q.CQ_WAITERS) | (1 << s));
  Q.cqEventIdx(f, load<u32>(a + Q.SQ_CQID), load<u32>(c + Q.CQ_HEAD));
  if (Q.sqState(f, s) == Q.SqState.ACTIVE) { count(Counter.err_nvme_cq_full); Q.sqSetState(f, s, Q.SqState.WAIT_CQ); }
}

// ---- NVM I/O commands ----

@inline function ioCommand(f: u32, g: u32, d: u32, gn: u32, r: u32, e: u32): void {
  const a = reqAddr(r);
  store<u32>(a + R_DISK, d);
  store<u32>(a + R_AUX0, AUX_PLAIN);
  store<u32>(a + R_AUX1, gn);
  count(Counter.nvme_io_commands);
  const st = ioParse(f, g, d, r, a, e);
  if (st == S.S_SUCCESS) blkSubmit(r);
  else if (st != NO_CQE) finish(f, r, st);
}

@inline function ioParse(f: u32, g: u32, d: u32, r: u32, a: u32, e: u32): u32 {
  const cdw0 = load<u32>(e + S.SQE_CDW0);
  const opc = cdw0 & S.CDW0_OPC_MASK;
  if (((cdw0 >> S.CDW0_FUSE_SHIFT) & S.CDW0_FUSE_MASK) != 0) return fail(Counter.err_nvme_fused_unsupported, S.S_INVALID_FIELD);
  if (((cdw0 >> S.CDW0_PSDT_SHIFT) & S.CDW0_PSDT_MASK) != 0) return fail(Counter.err_nvme_sgl_unsupported, S.S_INVALID_FIELD);
  const nsid = load<u32>(e + S.SQE_NSID);
  if (opc == S.IO_READ || opc == S.IO_WRITE) {
    if (nsid != S.NSID_ONE) return fail(Counter.err_nvme_invalid_namespace, S.S_INVALID_NAMESPACE);
    // MDTS first, then the LBA range, then the PRPs (the order QEMU's nvme_rw checks in).
    const bytes = ((load<u32>(e + S.SQE_CDW12) & S.CDW12_NLB_MASK) + 1) << diskBlockShift(d);
    if (bytes > R.NVME_MAX_XFER) return fail(Counter.err_nvme_transfer_too_large, S.S_INVALID_FIELD);
    const st = lbaRange(r, a, d, e, opc == S.IO_READ ? BlkOp.READ : BlkOp.WRITE);
    if (st != S.S_SUCCESS) return st;
    return prpMap(g, r, load<u64>(e + S.SQE_PRP1), load<u64>(e + S.SQE_PRP2), bytes);
  }
  if (opc == S.IO_FLUSH) {
    if (nsid != S.NSID_ONE && nsid != S.NSID_BROADCAST) return fail(Counter.err_nvme_invalid_namespace, S.S_INVALID_NAMESPACE);
    store<u32>(a + R_OP, BlkOp.FLUSH);
    return S.S_SUCCESS;
  }
  if (opc == S.IO_WRITE_ZEROES) {
    if (nsid != S.NSID_ONE) return fail(Counter.err_nvme_invalid_namespace, S.S_INVALID_NAMESPACE);
    return lbaRange(r, a, d, e, BlkOp.WRITE_ZEROES); // not limited by MDTS (WZSL = 0)
  }
  if (opc == S.IO_DSM) {
    if (nsid != S.NSID_ONE) return fail(Counter.err_nvme_invalid_namespace, S.S_INVALID_NAMESPACE);
    return dsm(f, g, d, r, a, e);
  }
  return fail(Counter.err_nvme_invalid_opcode, S.S_INVALID_OPCODE);
}

@inline function fail(c: Counter, status: u32): u32 { count(c); return status; }

/** SLBA (CDW10/11) and NLB (CDW12, 0's based) into r, checked against the namespace. */
@inline function lbaRange(r: u32, a: u32, d: u32, e: u32, op: BlkOp): u32 {
  const slba = load<u64>(e + S.SQE_CDW10);
  const nlb = (load<u32>(e + S.SQE_CDW12) & S.CDW12_NLB_MASK) + 1;
  const blocks = diskBlocks(d);
  if (slba > blocks || <u64>nlb > blocks - slba) return fail(Counter.err_nvme_lba_out_of_range, S.S_LBA_OUT_OF_RANGE);
  store<u32>(a + R_OP, op);
  store<u64>(a + R_LBA, slba);
  store<u32>(a + R_NBLOCKS, nlb);
  return S.S_SUCCESS;
}

/**
 * Dataset Management (NVM cmd set §3.2.3): the range list comes in through the
 * PRPs; each deallocated range becomes one DISCARD request, and the command (the
 * leader request) completes when the last range does.
 */
function dsm(f: u32, g: u32, d: u32, r: u32, a: u32, e: u32): u32 {
  if ((load<u32>(e + S.SQE_CDW11) & S.DSM_AD) == 0) { store<u32>(a + R_OP, BlkOp.FLUSH); return S.S_SUCCESS; } // advisory only
  const nr = (load<u32>(e + S.SQE_CDW10) & S.DSM_NR_MASK) + 1;
  const bytes = nr * S.DSM_RANGE_SIZE;
  const st = prpMap(g, r, load<u64>(e + S.SQE_PRP1), load<u64>(e + S.SQE_PRP2), bytes);
  if (st != S.S_SUCCESS) return st;
  const list = scratchAddr(f);
  segsGather(r, list, bytes);
  const blocks = diskBlocks(d);
  store<u32>(a + R_OP, BlkOp.DISCARD);
  store<u32>(a + R_AUX0, AUX_DSM_LEADER);
  store<u32>(a + R_NBLOCKS, 1); // held until every range is submitted
  for (let i: u32 = 0; i < nr; i++) {
    const re = list + i * S.DSM_RANGE_SIZE;
    const nlb = load<u32>(re + S.DSM_RANGE_NLB);
    const slba = load<u64>(re + S.DSM_RANGE_SLBA);
    if (nlb == 0) continue;
    if (slba > blocks || <u64>nlb > blocks - slba) {
      count(Counter.err_nvme_lba_out_of_range);
      store<u32>(a + R_STATUS, BlkStatus.LBA_RANGE);
      break;
    }
    const c = reqAlloc(f, load<u32>(a + R_QUEUE), load<u32>(a + R_ID));
    if (c == REQ_NONE) { count(Counter.err_no_request_slot); store<u32>(a + R_STATUS, BlkStatus.IOERR); break; }
    const ca = reqAddr(c);
    store<u32>(ca + R_DISK, d);
    store<u32>(ca + R_OP, BlkOp.DISCARD);
    store<u64>(ca + R_LBA, slba);
    store<u32>(ca + R_NBLOCKS, nlb);
    store<u32>(ca + R_AUX0, AUX_DSM_CHILD | r);
    store<u32>(ca + R_AUX1, load<u32>(a + R_AUX1));
    store<u32>(a + R_NBLOCKS, load<u32>(a + R_NBLOCKS) + 1);
    blkSubmit(c);
  }
  dsmRelease(r);
  return NO_CQE;
}

/** One range of DSM leader r is done (or the submission hold is dropped). */
function dsmRelease(r: u32): void {
  const a = reqAddr(r);
  const left = load<u32>(a + R_NBLOCKS) - 1;
  store<u32>(a + R_NBLOCKS, left);
  if (left == 0) finish(load<u32>(a + R_FUNC), r, blkStatus(load<u32>(a + R_STATUS), BlkOp.DISCARD));
}

/** A stale range of DSM leader r came back after a reset: free the leader with the last one, no CQE. */
function dsmDropStale(r: u32): void {
  const a = reqAddr(r);
  const left = load<u32>(a + R_NBLOCKS) - 1;
  store<u32>(a + R_NBLOCKS, left);
  if (left == 0) reqFree(r);
}

// ---- completion ----

@inline function blkStatus(st: u32, op: u32): u32 {
  if (st == BlkStatus.OK) return S.S_SUCCESS;
  if (st == BlkStatus.LBA_RANGE) return S.S_LBA_OUT_OF_RANGE;
  if (st == BlkStatus.UNSUPP) return S.S_INVALID_OPCODE;
  return op == BlkOp.READ ? S.S_UNRECOVERED_READ : S.S_WRITE_FAULT;
}

/** Post r's CQE with `status` into its SQ's CQ and free it. */
@inline function finish(f: u32, r: u32, status: u32): void {
  const a = reqAddr(r);
  const s = load<u32>(a + R_QUEUE);
  const sa = queueAddr(f, s);
  Q.cqPost(f, load<u32>(sa + Q.SQ_CQID), 0, s, load<u32>(a + R_ID), status);
  store<u32>(sa + Q.SQ_INFLIGHT, load<u32>(sa + Q.SQ_INFLIGHT) - 1);
  reqFree(r);
}

export function nvmeIoComplete(r: u32): void {
  const a = reqAddr(r);
  const f = load<u32>(a + R_FUNC);
  const aux = load<u32>(a + R_AUX0);
  if (load<u32>(a + R_AUX1) != gen(f)) {
    // from before a controller reset: no CQE to post; a DSM range also drops its leader's hold
    count(Counter.err_nvme_stale_completion);
    reqFree(r);
    if ((aux & AUX_DSM_CHILD) != 0) dsmDropStale(aux & AUX_INDEX_MASK);
    return;
  }
  if ((aux & AUX_DSM_CHILD) != 0) {
    const leader = aux & AUX_INDEX_MASK;
    const st = load<u32>(a + R_STATUS);
    const la = reqAddr(leader);
    if (st != BlkStatus.OK && load<u32>(la + R_STATUS) == BlkStatus.OK) store<u32>(la + R_STATUS, st);
    reqFree(r);
    dsmRelease(leader);
    return;
  }
  finish(f, r, blkStatus(load<u32>(a + R_STATUS), load<u32>(a + R_OP)));
}

/** Controller reset: queue state was cleared by funcReset; drop controller words, bump the generation. */
export function nvmeFuncReset(f: u32): void {
  const p = Q.priv(f);
  store<u32>(p + Q.P_GEN, load<u32>(p + Q.P_GEN) + 1);
  memory.fill(p + Q.P_GEN + 4, 0, Q.P_SIZE - 4);
  store<u32>(funcAddr(f) + FUNC_ENABLED_OFF, 0);
}
