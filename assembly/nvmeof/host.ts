// NVMe-oF host in the DPU (NVMe-oF 1.1 §7.3, RDMA transport): a remote disk's requests become
// command capsules SENT on an RC QP the CM has connected; the target moves the data with RDMA
// READ / WRITE on the guest's memory region (keyed SGL) or takes it from the capsule, then SENDs
// the response capsule into one of our posted response buffers. Per fabric queue: a control
// entry (defs.ts NQ_*), NVMF_DEPTH capsule slots and NVMF_DEPTH response buffers (memmap.ts).
// Hot path: raw loads / stores, one rcPostSend and one rcPostRecv per queue per poll.
import { G_NOW, NVMF_BASE, NVMF_MAX_QUEUES, NVMF_DEPTH, NVMF_QUEUE_ENTRY_SIZE, NVMF_CAPSULE_SLOT, NVMF_RESP_SLOT, NVMF_CAPSULES,
  NVMF_RESPONSES, MAX_QPS, MAX_REQS, MAX_GUESTS, MAX_DISKS, GUEST_TABLE_BASE, GUEST_ENTRY_SIZE, CARD_MEM_BASE,
  DISK_BLOCK_SHIFT_OFF } from "../memmap";
import { Counter } from "../counters";
import { count, countN } from "../stats";
import { reqAddr, reqSetState, ReqState, BlkOp, BlkStatus, R_STATE, R_FUNC, R_OP, R_LBA, R_NBLOCKS, R_NSEGS, R_SEGS, R_STATUS,
  R_DISK, R_BYTES, R_NEXT, R_PARTS, SEG_SIZE } from "../blk/req";
import { diskAddr, blkFail } from "../blk/disk";
import { reqComplete } from "../pipeline";
import { funcGuest } from "../pcie/func";
import { mrRegister, mrDeregister } from "../rdma/mr";
import { rcPostSend, rcPostRecv, rcService } from "../rdma/req";
import { rcAddr, rcOn } from "../rdma/rc";
import { qpState, qpAddr, qpModify, QpState, QP_MTU } from "../rdma/qp";
import { RCQ_CTRL, RCQ_SQ, RCQ_RQ, RCQ_CQ, RC_SQ_DEPTH, RC_RQ_DEPTH, RC_CQ_DEPTH, RCC_SQ_TAIL, RCC_RQ_TAIL, RCC_RQ_HEAD,
  RCC_CQ_PROD, RCC_CQ_CONS, SWQE_SIZE, SWQE_WRID, SWQE_OP, SWQE_LKEY, SWQE_LADDR, SWQE_LEN, RWQE_SIZE, RWQE_WRID, RWQE_LADDR,
  RWQE_LKEY, RWQE_LEN, CQE_SIZE as RC_CQE_SIZE, CQE_WRID, CQE_STATUS, CQE_BYTE_LEN, MR_LOCAL_WRITE, WrOp, WcStatus } from "../rdma/rcdefs";
import { SQE_SIZE, SQE_CDW0, SQE_NSID, SQE_CDW10, SQE_CDW11, SQE_CDW12, SQE_CID, CQE_SIZE, CQE_DW2, CQE_DW3, CQE_SQID_SHIFT,
  CQE_STATUS_SHIFT, IO_READ, IO_WRITE, IO_FLUSH, IO_WRITE_ZEROES, IO_DSM, DSM_AD, S_LBA_OUT_OF_RANGE, ST_DNR } from "../nvme/spec";
import { CDW0_PSDT_SGL, SQE_SGL1, SGL_ADDR, SGL_KEYED_LEN, SGL_KEYED_KEY, SGL_LEN, SGL_ID, SGL_ID_KEYED, SGL_ID_INCAPSULE,
  SGL_KEYED_MAX, CAPSULE_DATA_OFF, INCAPSULE_MAX, DSM_RANGE_BYTES, NLB_MAX, NvmfQueueState, SlotState, NQ_STATE, NQ_QPN,
  NQ_QID, NQ_DEPTH, NQ_CAP_KEY, NQ_RESP_KEY, NQ_BUSY, NQ_TO_POST, NQ_TO_REPOST, NQ_WAIT_HEAD, NQ_WAIT_TAIL, NQ_NRESP,
  NQ_HOLD, NQ_LOST_AT, NQ_DONE_AT, NQ_OUTAGE, NQ_HELD, NQ_LOSSES, NQ_RESUBMITTED, NQ_PROGRESS_AT,
  SLOT_META, SM_STATE, SM_REQ, SM_CID, SM_GEN, SM_CQE, SM_RAW, CID_SLOT_MASK, CID_GEN_SHIFT, CID_GEN_MASK, WRID_RECV,
  DISK_NVMF_QUEUE_OFF, DISK_NVMF_NSID_OFF, DISK_NVMF_MAXBLK_OFF, GUEST_NVMF_KEY_OFF, RAW_PENDING, RAW_UNKNOWN } from "./defs";

const NONE: u32 = 0xffffffff;
const STATUS_MASK: u32 = ~ST_DNR & 0x7fff; // SC and SCT: what the status means, without DNR / More / CRD
const WRID_INDEX_MASK: u32 = 0xffff;

@inline export function nqAddr(q: u32): u32 { return NVMF_BASE + q * NVMF_QUEUE_ENTRY_SIZE; }
@inline function capAddr(q: u32, i: u32): u32 { return NVMF_CAPSULES + (q * NVMF_DEPTH + i) * NVMF_CAPSULE_SLOT; }
@inline function respAddr(q: u32, j: u32): u32 { return NVMF_RESPONSES + (q * NVMF_DEPTH + j) * NVMF_RESP_SLOT; }
@inline function metaAddr(q: u32, i: u32): u32 { return capAddr(q, i) + SLOT_META; }
@inline function qState(qa: u32): u32 { return load<u32>(qa + NQ_STATE); }

// ---- queue lifecycle ----

/** May a fabric queue in state `from` move to `to`? (defs.ts NvmfQueueState draws the graph.) */
function queueAllowed(from: u32, to: u32): bool {
  switch (to) {
    case NvmfQueueState.IDLE: return true; // teardown from anywhere
    case NvmfQueueState.CONNECTING: return from == NvmfQueueState.IDLE;
    case NvmfQueueState.LIVE: return from == NvmfQueueState.CONNECTING || from == NvmfQueueState.RESUMING;
    case NvmfQueueState.FAILED: return from != NvmfQueueState.IDLE && from != NvmfQueueState.FAILED;
    case NvmfQueueState.RECONNECTING: return from == NvmfQueueState.LIVE || from == NvmfQueueState.RESUMING;
    case NvmfQueueState.RESUMING: return from == NvmfQueueState.RECONNECTING;
  }
  return false;
}

/** A queue in this state has a QP whose completions are ours to reap. */
@inline function bound(st: u32): bool {
  return st == NvmfQueueState.CONNECTING || st == NvmfQueueState.LIVE || st == NvmfQueueState.RESUMING;
}

/**
 * The one transition function of a fabric queue. Entering FAILED or IDLE ends every request
 * waiting, held or in flight on it (IOERR, counted err_nvmf_queue_down: the QP will not
 * answer); IDLE also gives the memory regions back. Entering RECONNECTING takes the requests
 * in flight back to the head of the wait list (holdAll); LIVE from RESUMING issues them again.
 * False (err_bad_config) when not allowed.
 */
function queueSetState(q: u32, to: u32): bool {
  const qa = nqAddr(q);
  const from = qState(qa);
  if (!queueAllowed(from, to)) { count(Counter.err_bad_config); return false; }
  store<u32>(qa + NQ_STATE, to);
  if (to == NvmfQueueState.FAILED || (to == NvmfQueueState.IDLE && from != NvmfQueueState.IDLE)) abortAll(q, qa);
  if (to == NvmfQueueState.RECONNECTING) holdAll(q, qa);
  if (to == NvmfQueueState.LIVE && from == NvmfQueueState.RESUMING) resume(q, qa);
  if (to == NvmfQueueState.IDLE && from != NvmfQueueState.IDLE) {
    const ck = load<u32>(qa + NQ_CAP_KEY), rk = load<u32>(qa + NQ_RESP_KEY);
    if (ck != 0) mrDeregister(ck);
    if (rk != 0) mrDeregister(rk);
    memory.fill(qa, 0, NVMF_QUEUE_ENTRY_SIZE);
  }
  return true;
}

function abortAll(q: u32, qa: u32): void {
  const depth = load<u32>(qa + NQ_DEPTH);
  for (let i: u32 = 0; i < depth; i++) {
    const m = metaAddr(q, i);
    if (load<u32>(m + SM_STATE) == SlotState.FREE) continue;
    const r = load<u32>(m + SM_REQ);
    store<u32>(m + SM_STATE, SlotState.FREE);
    if (r != SM_RAW && reqLive(r)) { count(Counter.err_nvmf_queue_down); blkFail(r, BlkStatus.IOERR); }
  }
  store<u64>(qa + NQ_BUSY, 0);
  store<u32>(qa + NQ_TO_POST, 0);
  store<u32>(qa + NQ_TO_REPOST, 0);
  let r = load<u32>(qa + NQ_WAIT_HEAD);
  store<u32>(qa + NQ_WAIT_HEAD, NONE);
  store<u32>(qa + NQ_WAIT_TAIL, NONE);
  while (r != NONE && r < MAX_REQS) {
    const next = load<u32>(reqAddr(r) + R_NEXT);
    count(Counter.err_nvmf_queue_down);
    blkFail(r, BlkStatus.IOERR);
    r = next;
  }
}

/**
 * The queue's connection is gone (QP out of RTS, flushed or failed work, a refused post):
 * RECONNECTING when the queue holds its requests over a loss (NQ_HOLD) and was up, else FAILED.
 */
function queueLost(q: u32, qa: u32): void {
  const st = qState(qa);
  const hold = load<u32>(qa + NQ_HOLD) != 0 && (st == NvmfQueueState.LIVE || st == NvmfQueueState.RESUMING);
  queueSetState(q, hold ? NvmfQueueState.RECONNECTING : NvmfQueueState.FAILED);
}

/**
 * Every request with a command still unanswered on the lost connection goes back, once, to the
 * head of the wait list (oldest slot first), to be issued again whole with fresh capsules and
 * CIDs once the queue is LIVE on a new QP: a write or read done twice is idempotent, a request
 * completed twice is not, and the old QP (in ERR) can deliver nothing more. Answered commands
 * and setup commands (their host sees RAW_UNKNOWN) just give their slots back.
 */
function holdAll(q: u32, qa: u32): void {
  if (load<u32>(qa + NQ_OUTAGE) == 0) { // the first loss of this outage: its start
    store<u32>(qa + NQ_OUTAGE, 1);
    store<f64>(qa + NQ_LOST_AT, load<f64>(G_NOW));
  }
  store<u32>(qa + NQ_LOSSES, load<u32>(qa + NQ_LOSSES) + 1);
  count(Counter.nvmf_queue_lost);
  // The old QP answers nothing more: a late RDMA WRITE of a read we issue again must not land
  // in guest memory after the new one completed (a refused post or the host's drop leave it in RTS).
  const qpn = load<u32>(qa + NQ_QPN);
  if (qpState(qpn) != QpState.ERR) qpModify(qpn, QpState.ERR, 0, 0, 0);
  const depth = load<u32>(qa + NQ_DEPTH);
  let head = NONE, tail = NONE, n: u32 = 0;
  for (let i: u32 = 0; i < depth; i++) {
    const m = metaAddr(q, i);
    const st = load<u32>(m + SM_STATE);
    if (st == SlotState.FREE) continue;
    const r = load<u32>(m + SM_REQ);
    store<u32>(m + SM_STATE, SlotState.FREE);
    if (r == SM_RAW || !reqLive(r) || (st != SlotState.POSTED && st != SlotState.SENT)) continue;
    const a = reqAddr(r);
    if (load<u32>(a + R_PARTS) == 0) continue; // taken back already (another of its parts)
    store<u32>(a + R_PARTS, 0);
    store<u32>(a + R_NEXT, NONE);
    if (tail == NONE) head = r;
    else store<u32>(reqAddr(tail) + R_NEXT, r);
    tail = r;
    n++;
  }
  store<u64>(qa + NQ_BUSY, 0);
  store<u32>(qa + NQ_TO_POST, 0);
  store<u32>(qa + NQ_TO_REPOST, 0);
  if (n == 0) return;
  countN(Counter.nvmf_held, n);
  store<u32>(qa + NQ_HELD, load<u32>(qa + NQ_HELD) + n);
  const w = load<u32>(qa + NQ_WAIT_HEAD);
  store<u32>(reqAddr(tail) + R_NEXT, w);
  if (w == NONE) store<u32>(qa + NQ_WAIT_TAIL, tail);
  store<u32>(qa + NQ_WAIT_HEAD, head);
}

/** LIVE again on a new connection: the held requests (at the head of the wait list) go out first. */
function resume(q: u32, qa: u32): void {
  const n = load<u32>(qa + NQ_HELD);
  countN(Counter.nvmf_resubmitted, n);
  store<u32>(qa + NQ_RESUBMITTED, load<u32>(qa + NQ_RESUBMITTED) + n);
  store<u32>(qa + NQ_HELD, 0);
  // Nothing waited through the outage: it ends here (no request was stalled past recovery).
  if (load<u32>(qa + NQ_WAIT_HEAD) == NONE) outageEnd(qa);
  drainWaiters(q, qa);
  flushSend(q, qa);
}

@inline function outageEnd(qa: u32): void {
  store<u32>(qa + NQ_OUTAGE, 0);
  store<f64>(qa + NQ_DONE_AT, load<f64>(G_NOW));
}

@inline function reqLive(r: u32): bool { return r < MAX_REQS && load<u32>(reqAddr(r) + R_STATE) == ReqState.FABRIC; }

/** Any fabric queue set up: poll() then drives the RDMA engine and reaps the queues. */
export function nvmfActive(): bool {
  for (let q: u32 = 0; q < NVMF_MAX_QUEUES; q++) if (qState(nqAddr(q)) != NvmfQueueState.IDLE) return true;
  return false;
}

/**
 * Fabric queue q runs on RC QP qpn (RTS, RC engine on, receive queue empty) as NVMe-oF queue
 * qid with `depth` capsules in flight at most: registers its capsule slots (local read) and
 * response buffers (local write) as card-memory regions and posts one receive per response
 * buffer. A queue that was set up before is torn down first. Returns 0 or the Counter of the
 * refusal.
 */
export function queueSetup(q: u32, qpn: u32, qid: u32, depth: u32): u32 {
  if (q >= NVMF_MAX_QUEUES || qpn >= MAX_QPS || qid > 0xffff || depth == 0 || depth > NVMF_DEPTH || depth > RC_SQ_DEPTH
    || depth > RC_RQ_DEPTH || depth * 2 > RC_CQ_DEPTH) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  for (let o: u32 = 0; o < NVMF_MAX_QUEUES; o++) { // one QP, one queue: its completions have one reader
    const oa = nqAddr(o);
    if (o != q && bound(qState(oa)) && load<u32>(oa + NQ_QPN) == qpn) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  }
  if (!qpReady(qpn)) { count(Counter.err_nvmf_queue_down); return Counter.err_nvmf_queue_down; }
  const qa = nqAddr(q);
  if (qState(qa) != NvmfQueueState.IDLE) queueSetState(q, NvmfQueueState.IDLE);
  for (let i: u32 = 0; i < depth; i++) memory.fill(metaAddr(q, i), 0, NVMF_CAPSULE_SLOT - SLOT_META);
  const cap = capAddr(q, 0), resp = respAddr(q, 0);
  const ck = mrRegister(-1, cap, depth * NVMF_CAPSULE_SLOT, <u64>cap, 0);
  const rk = ck == 0 ? 0 : mrRegister(-1, resp, depth * NVMF_RESP_SLOT, <u64>resp, MR_LOCAL_WRITE);
  if (rk == 0) { if (ck != 0) mrDeregister(ck); return Counter.err_rdma_mr_bad; }
  store<u32>(qa + NQ_QPN, qpn);
  store<u32>(qa + NQ_QID, qid);
  store<u32>(qa + NQ_DEPTH, depth);
  store<u32>(qa + NQ_CAP_KEY, ck);
  store<u32>(qa + NQ_RESP_KEY, rk);
  store<u64>(qa + NQ_BUSY, 0);
  store<u32>(qa + NQ_TO_POST, 0);
  store<u32>(qa + NQ_TO_REPOST, 0);
  store<u32>(qa + NQ_WAIT_HEAD, NONE);
  store<u32>(qa + NQ_WAIT_TAIL, NONE);
  store<u32>(qa + NQ_NRESP, depth);
  memory.fill(qa + NQ_HOLD, 0, NVMF_QUEUE_ENTRY_SIZE - NQ_HOLD);
  queueSetState(q, NvmfQueueState.CONNECTING);
  for (let j: u32 = 0; j < depth; j++) writeRecv(q, qa, j);
  if (!flushRecv(qa)) { queueSetState(q, NvmfQueueState.FAILED); return Counter.err_nvmf_queue_down; }
  return 0;
}

/** A connected QP the queue can take: RC engine on, RTS, nothing posted to receive yet. */
function qpReady(qpn: u32): bool {
  const c = rcAddr(qpn);
  return rcOn(qpn) && qpState(qpn) == QpState.RTS && load<u32>(c + RCC_RQ_TAIL) == load<u32>(c + RCC_RQ_HEAD);
}

/** Hold requests over a lost connection (on) or fail them (off, the default). 0 or a Counter. */
export function queueHold(q: u32, on: u32): u32 {
  if (q >= NVMF_MAX_QUEUES || !bound(qState(nqAddr(q)))) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  store<u32>(nqAddr(q) + NQ_HOLD, on != 0 ? 1 : 0);
  return 0;
}

/**
 * RECONNECTING → RESUMING on RC QP qpn (a new connection, as nvmfQueueSetup takes it): same
 * queue ID, depth and memory regions; every response buffer posted again. The held requests
 * wait for nvmfQueueLive; setup commands (the Fabrics Connect) may go out. 0 or a Counter.
 */
export function queueReconnect(q: u32, qpn: u32): u32 {
  if (q >= NVMF_MAX_QUEUES || qpn >= MAX_QPS || qState(nqAddr(q)) != NvmfQueueState.RECONNECTING) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  for (let o: u32 = 0; o < NVMF_MAX_QUEUES; o++) {
    const oa = nqAddr(o);
    if (o != q && bound(qState(oa)) && load<u32>(oa + NQ_QPN) == qpn) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  }
  if (!qpReady(qpn)) { count(Counter.err_nvmf_queue_down); return Counter.err_nvmf_queue_down; }
  const qa = nqAddr(q);
  store<u32>(qa + NQ_QPN, qpn);
  store<u32>(qa + NQ_TO_POST, 0);
  store<u32>(qa + NQ_TO_REPOST, 0);
  queueSetState(q, NvmfQueueState.RESUMING);
  const depth = load<u32>(qa + NQ_NRESP);
  for (let j: u32 = 0; j < depth; j++) writeRecv(q, qa, j);
  if (!flushRecv(qa)) { queueLost(q, qa); return Counter.err_nvmf_queue_down; }
  return 0;
}

/** LIVE or RESUMING → RECONNECTING on the host's word (its association is gone; Connect refused): requests held. */
export function queueDrop(q: u32): u32 {
  if (q >= NVMF_MAX_QUEUES) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  const qa = nqAddr(q);
  if (load<u32>(qa + NQ_HOLD) == 0 || !queueSetState(q, NvmfQueueState.RECONNECTING)) return Counter.err_bad_config;
  return 0;
}

/**
 * The host gave up reconnecting: RECONNECTING / RESUMING → FAILED; every held or waiting
 * request fails (IOERR, err_nvmf_queue_down), as do later ones. Returns how many failed.
 */
export function queueFailHeld(q: u32): u32 {
  if (q >= NVMF_MAX_QUEUES) { count(Counter.err_bad_config); return 0; }
  const qa = nqAddr(q);
  const st = qState(qa);
  if (st != NvmfQueueState.RECONNECTING && st != NvmfQueueState.RESUMING) { count(Counter.err_bad_config); return 0; }
  let n: u32 = 0;
  for (let r = load<u32>(qa + NQ_WAIT_HEAD); r != NONE && r < MAX_REQS; r = load<u32>(reqAddr(r) + R_NEXT)) n++;
  queueSetState(q, NvmfQueueState.FAILED);
  store<u32>(qa + NQ_HELD, 0);
  return n;
}

/** CONNECTING → LIVE (the host's Fabrics Connect succeeded): I/O may use the queue. 0 or a Counter. */
export function queueLive(q: u32): u32 {
  if (q >= NVMF_MAX_QUEUES || !queueSetState(q, NvmfQueueState.LIVE)) return Counter.err_bad_config;
  return 0;
}

/** Tear queue q down (IDLE): requests on it fail, its regions are deregistered. */
export function queueTeardown(q: u32): void {
  if (q < NVMF_MAX_QUEUES) queueSetState(q, NvmfQueueState.IDLE);
}

export function queueState(q: u32): u32 { return q < NVMF_MAX_QUEUES ? qState(nqAddr(q)) : NvmfQueueState.IDLE; }

/** Card offset of queue q's entry (defs.ts NQ_*), 0 for none: the host reads its outage figures there. */
export function queueAddr(q: u32): u32 { return q < NVMF_MAX_QUEUES ? nqAddr(q) : 0; }

/** The MR key keyed SGLs use for guest g's data (0: none, such requests fail). */
export function setGuestKey(g: u32, key: u32): void {
  if (g >= MAX_GUESTS) { count(Counter.err_bad_config); return; }
  store<u32>(GUEST_TABLE_BASE + g * GUEST_ENTRY_SIZE + GUEST_NVMF_KEY_OFF, key);
}

/** Remote disk d is namespace nsid behind fabric queue q. */
export function setDiskQueue(d: u32, q: u32, nsid: u32): void {
  if (d >= MAX_DISKS || q >= NVMF_MAX_QUEUES) { count(Counter.err_bad_config); return; }
  store<u32>(diskAddr(d) + DISK_NVMF_QUEUE_OFF, q);
  store<u32>(diskAddr(d) + DISK_NVMF_NSID_OFF, nsid);
}

/** The controller behind remote disk d takes at most `bytes` per command (0: no limit but the capsule's). */
export function setDiskMaxTransfer(d: u32, bytes: u32): void {
  if (d >= MAX_DISKS) { count(Counter.err_bad_config); return; }
  const a = diskAddr(d);
  const blocks = bytes >> load<u32>(a + DISK_BLOCK_SHIFT_OFF);
  if (bytes != 0 && blocks == 0) { count(Counter.err_bad_config); return; } // smaller than a block
  store<u32>(a + DISK_NVMF_MAXBLK_OFF, blocks);
}

// ---- capsule slots ----

function slotAllowed(from: u32, to: u32): bool {
  switch (from) {
    case SlotState.FREE: return to == SlotState.POSTED;
    case SlotState.POSTED: return to == SlotState.ANSWERED || to == SlotState.SENT;
    case SlotState.ANSWERED: return to == SlotState.FREE || to == SlotState.RAW_READY;
    case SlotState.SENT: return to == SlotState.FREE || to == SlotState.RAW_READY;
    case SlotState.RAW_READY: return to == SlotState.FREE;
  }
  return false;
}

/** The one transition function of a capsule slot; FREE gives the slot back to the queue. */
function slotSetState(qa: u32, m: u32, i: u32, to: u32): void {
  if (!slotAllowed(load<u32>(m + SM_STATE), to)) { count(Counter.err_bad_config); return; }
  store<u32>(m + SM_STATE, to);
  if (to == SlotState.FREE) store<u64>(qa + NQ_BUSY, load<u64>(qa + NQ_BUSY) & ~(<u64>1 << i));
}

/** A FREE slot of the queue, or NONE. */
@inline function slotFind(qa: u32): u32 {
  const depth = load<u32>(qa + NQ_DEPTH);
  const all: u64 = depth >= 64 ? <u64>-1 : (<u64>1 << depth) - 1;
  const free = ~load<u64>(qa + NQ_BUSY) & all;
  return free == 0 ? NONE : <u32>ctz(free);
}

/** Slot i of queue q goes to request r (or SM_RAW): POSTED with a fresh CID, which it returns. */
@inline function slotTake(q: u32, qa: u32, i: u32, r: u32): u32 {
  const m = metaAddr(q, i);
  const gen = load<u32>(m + SM_GEN) + 1;
  const cid = i | ((gen & CID_GEN_MASK) << CID_GEN_SHIFT);
  store<u32>(m + SM_GEN, gen);
  store<u32>(m + SM_CID, cid);
  store<u32>(m + SM_REQ, r);
  slotSetState(qa, m, i, SlotState.POSTED);
  const busy = load<u64>(qa + NQ_BUSY);
  if (busy == 0) store<f64>(qa + NQ_PROGRESS_AT, load<f64>(G_NOW)); // an idle queue has waited for nothing so far
  store<u64>(qa + NQ_BUSY, busy | (<u64>1 << i));
  return cid;
}

// ---- work requests: written here, posted once per poll (nvmfFlush) ----

@inline function writeSend(q: u32, qa: u32, i: u32, cid: u32, len: u32): void {
  const c = rcAddr(load<u32>(qa + NQ_QPN));
  const n = load<u32>(qa + NQ_TO_POST);
  const w = c - RCQ_CTRL + RCQ_SQ + ((load<u32>(c + RCC_SQ_TAIL) + n) % RC_SQ_DEPTH) * SWQE_SIZE;
  memory.fill(w, 0, SWQE_SIZE);
  store<u64>(w + SWQE_WRID, <u64>cid);
  store<u32>(w + SWQE_OP, WrOp.SEND); // the whole word: signaled, whole message
  store<u32>(w + SWQE_LKEY, load<u32>(qa + NQ_CAP_KEY));
  store<u64>(w + SWQE_LADDR, <u64>capAddr(q, i)); // VA = card offset (queueSetup)
  store<u32>(w + SWQE_LEN, len);
  store<u32>(qa + NQ_TO_POST, n + 1);
  count(Counter.nvmf_capsules_sent);
}

@inline function writeRecv(q: u32, qa: u32, j: u32): void {
  const c = rcAddr(load<u32>(qa + NQ_QPN));
  const n = load<u32>(qa + NQ_TO_REPOST);
  const w = c - RCQ_CTRL + RCQ_RQ + ((load<u32>(c + RCC_RQ_TAIL) + n) % RC_RQ_DEPTH) * RWQE_SIZE;
  store<u64>(w + RWQE_WRID, <u64>(WRID_RECV | j));
  store<u64>(w + RWQE_LADDR, <u64>respAddr(q, j));
  store<u32>(w + RWQE_LKEY, load<u32>(qa + NQ_RESP_KEY));
  store<u32>(w + RWQE_LEN, NVMF_RESP_SLOT); // room beyond the 16-byte CQE: an oversized reply is ours to count, not a NAK
  store<u32>(qa + NQ_TO_REPOST, n + 1);
}

/** Post the SENDs written this poll; a refusal (the QP broke) fails the queue. */
function flushSend(q: u32, qa: u32): void {
  const n = load<u32>(qa + NQ_TO_POST);
  if (n == 0) return;
  store<u32>(qa + NQ_TO_POST, 0);
  if (rcPostSend(load<u32>(qa + NQ_QPN), n) != n) { count(Counter.err_nvmf_send_failed); queueLost(q, qa); }
}

function flushRecv(qa: u32): bool {
  const n = load<u32>(qa + NQ_TO_REPOST);
  if (n == 0) return true;
  store<u32>(qa + NQ_TO_REPOST, 0);
  return rcPostRecv(load<u32>(qa + NQ_QPN), n) == n;
}

// ---- setup commands from the host (Connect, Property Get / Set, Identify) ----

/**
 * Send the SQE at card offset sqe (+ dataLen bytes of in-capsule data right after it) on queue
 * q, with a CID of ours written over its CID field. Returns the CID, or RAW_UNKNOWN when the
 * queue is not up (err_nvmf_queue_down), has no free slot (err_nvmf_queue_full) or the
 * arguments are out of range (err_bad_config).
 */
export function submitRaw(q: u32, sqe: u32, dataLen: u32): u32 {
  if (q >= NVMF_MAX_QUEUES) { count(Counter.err_bad_config); return RAW_UNKNOWN; }
  const qa = nqAddr(q);
  const st = qState(qa);
  if (!bound(st)) { count(Counter.err_nvmf_queue_down); return RAW_UNKNOWN; }
  const end = <u64>memory.size() << 16;
  if (dataLen > INCAPSULE_MAX || sqe < CARD_MEM_BASE || <u64>sqe + <u64>(SQE_SIZE + dataLen) > end) { count(Counter.err_bad_config); return RAW_UNKNOWN; }
  const i = slotFind(qa);
  if (i == NONE) { count(Counter.err_nvmf_queue_full); return RAW_UNKNOWN; }
  const cid = slotTake(q, qa, i, SM_RAW);
  const s = capAddr(q, i);
  memory.copy(s, sqe, SQE_SIZE + dataLen);
  store<u16>(s + SQE_CID, <u16>cid);
  writeSend(q, qa, i, cid, SQE_SIZE + dataLen);
  flushSend(q, qa);
  return cid;
}

/**
 * The response of setup command cid on queue q: the card offset of a copy of its 16-byte CQE
 * (valid until the queue's next command) once both the response and our SEND's completion are
 * in — the slot is free again after this call; RAW_PENDING before; RAW_UNKNOWN for a CID not in
 * flight (never sent, already read, or the queue failed).
 */
export function rawResult(q: u32, cid: u32): u32 {
  if (q >= NVMF_MAX_QUEUES) return RAW_UNKNOWN;
  const qa = nqAddr(q);
  const i = cid & CID_SLOT_MASK;
  if (i >= load<u32>(qa + NQ_DEPTH)) return RAW_UNKNOWN;
  const m = metaAddr(q, i);
  const st = load<u32>(m + SM_STATE);
  if (st == SlotState.FREE || load<u32>(m + SM_CID) != cid || load<u32>(m + SM_REQ) != SM_RAW) return RAW_UNKNOWN;
  if (st != SlotState.RAW_READY) return RAW_PENDING;
  slotSetState(qa, m, i, SlotState.FREE);
  return m + SM_CQE;
}

// ---- per-I/O path ----

/**
 * A request for a remote disk (blkSubmit, LBA range already checked): its capsule goes out on
 * the disk's queue, or it waits (FIFO) for a free slot or for the queue's new connection
 * (RECONNECTING, RESUMING); a queue that is neither fails it.
 */
export function nvmfSubmit(r: u32): void {
  const d = load<u32>(reqAddr(r) + R_DISK);
  const q = load<u32>(diskAddr(d) + DISK_NVMF_QUEUE_OFF);
  const st = q < NVMF_MAX_QUEUES ? qState(nqAddr(q)) : NvmfQueueState.IDLE;
  const held = st == NvmfQueueState.RECONNECTING || st == NvmfQueueState.RESUMING; // waits for the new connection
  if (st != NvmfQueueState.LIVE && !held) {
    count(Counter.err_nvmf_queue_down);
    blkFail(r, BlkStatus.IOERR);
    return;
  }
  const qa = nqAddr(q);
  reqSetState(r, ReqState.FABRIC);
  if (held || load<u32>(qa + NQ_WAIT_HEAD) != NONE || !issue(q, qa, r)) waitPush(qa, r);
}

@inline function waitPush(qa: u32, r: u32): void {
  count(Counter.nvmf_waited);
  store<u32>(reqAddr(r) + R_NEXT, NONE);
  const t = load<u32>(qa + NQ_WAIT_TAIL);
  if (t == NONE) store<u32>(qa + NQ_WAIT_HEAD, r);
  else store<u32>(reqAddr(t) + R_NEXT, r);
  store<u32>(qa + NQ_WAIT_TAIL, r);
}

/** Issue waiting requests while slots are free (oldest first). */
function drainWaiters(q: u32, qa: u32): void {
  let r = load<u32>(qa + NQ_WAIT_HEAD);
  while (r != NONE && qState(qa) == NvmfQueueState.LIVE) {
    const next = load<u32>(reqAddr(r) + R_NEXT);
    if (!issue(q, qa, r)) break;
    r = next;
    store<u32>(qa + NQ_WAIT_HEAD, r);
    if (r == NONE) store<u32>(qa + NQ_WAIT_TAIL, NONE);
  }
}

/**
 * The one data descriptor a keyed SGL can name: the request's segments as one run of card
 * memory (adjacent segments merge), or NONE when they are scattered.
 */
@inline function oneRun(a: u32): u32 {
  const n = load<u32>(a + R_NSEGS);
  let s = a + R_SEGS;
  const start = load<u32>(s);
  let end = start + load<u32>(s + 4);
  for (let k: u32 = 1; k < n; k++) {
    s += SEG_SIZE;
    if (load<u32>(s) != end) return NONE;
    end += load<u32>(s + 4);
  }
  return start;
}

/**
 * Write data travels in the capsule when capsule and data fit one SEND packet at the queue's
 * path MTU (and our target's INCAPSULE_MAX): a multi-packet SEND would cost the same frames as
 * an RDMA READ, and Wireshark's nvme-rdma dissector decodes only single-packet capsules.
 */
@inline function inCapsuleMax(qa: u32): u32 {
  const mtu = load<u32>(qpAddr(load<u32>(qa + NQ_QPN)) + QP_MTU);
  const fit = mtu > SQE_SIZE ? mtu - SQE_SIZE : 0;
  return fit < INCAPSULE_MAX ? fit : INCAPSULE_MAX;
}

/**
 * Build request r's command capsule(s) and write their SENDs; false when not enough slots are
 * free. A read, keyed write or write zeroes longer than the disk's largest command (the
 * controller's MDTS, NLB's 16 bits, a keyed length's 24 bits) goes out as several commands on
 * consecutive blocks; the request completes when the last answers (R_PARTS). A request the
 * capsules cannot carry completes here with its error (and true).
 */
function issue(q: u32, qa: u32, r: u32): bool {
  const a = reqAddr(r);
  const op = load<u32>(a + R_OP);
  const nblk = load<u32>(a + R_NBLOCKS);
  const bytes = load<u32>(a + R_BYTES);
  const d = diskAddr(load<u32>(a + R_DISK));
  if (op != BlkOp.FLUSH && nblk == 0) return refuse(r, Counter.err_nvmf_bad_length, BlkStatus.UNSUPP);
  const inCapsule = op == BlkOp.WRITE && bytes <= inCapsuleMax(qa);
  let run: u32 = 0;
  let key: u32 = 0;
  if ((op == BlkOp.READ || op == BlkOp.WRITE) && !inCapsule) {
    run = oneRun(a);
    if (run == NONE) return refuse(r, Counter.err_nvmf_too_many_segs, BlkStatus.UNSUPP);
    const g = funcGuest(load<u32>(a + R_FUNC));
    key = g < MAX_GUESTS ? load<u32>(GUEST_TABLE_BASE + g * GUEST_ENTRY_SIZE + GUEST_NVMF_KEY_OFF) : 0;
    if (key == 0) return refuse(r, Counter.err_bad_config, BlkStatus.IOERR);
  }
  const shift = load<u32>(d + DISK_BLOCK_SHIFT_OFF);
  const per = diskMaxBlocks(d, shift);
  const split = op == BlkOp.WRITE_ZEROES || ((op == BlkOp.READ || op == BlkOp.WRITE) && !inCapsule);
  const parts = split ? (nblk + per - 1) / per : 1;
  if (parts > load<u32>(qa + NQ_DEPTH)) return refuse(r, Counter.err_nvmf_bad_length, BlkStatus.UNSUPP);
  if (freeSlots(qa) < parts) return false;
  store<u32>(a + R_PARTS, parts);
  store<u32>(a + R_STATUS, BlkStatus.OK);
  const nsid = load<u32>(d + DISK_NVMF_NSID_OFF);
  let lba = load<u64>(a + R_LBA);
  let left = nblk;
  for (let k: u32 = 0; k < parts; k++) {
    const n = split && left > per ? per : left;
    const i = slotFind(qa);
    const cid = slotTake(q, qa, i, r);
    const s = capAddr(q, i);
    memory.fill(s, 0, SQE_SIZE);
    store<u32>(s + SQE_NSID, nsid);
    const len = capsule(a, s, op, cid, lba, n, inCapsule, bytes, run, n << shift, key);
    writeSend(q, qa, i, cid, len);
    lba += <u64>n;
    run += n << shift;
    left -= n;
  }
  return true;
}

/** The largest command of disk entry d in blocks: nvmfSetMaxTransfer's, NLB's 16 bits, a keyed length's 24 bits. */
@inline function diskMaxBlocks(d: u32, shift: u32): u32 {
  let per = (SGL_KEYED_MAX + 1) >> shift;
  if (per > NLB_MAX) per = NLB_MAX;
  const lim = load<u32>(d + DISK_NVMF_MAXBLK_OFF);
  return lim != 0 && lim < per ? lim : per;
}

@inline function freeSlots(qa: u32): u32 {
  const depth = load<u32>(qa + NQ_DEPTH);
  const all: u64 = depth >= 64 ? <u64>-1 : (<u64>1 << depth) - 1;
  return <u32>popcnt(~load<u64>(qa + NQ_BUSY) & all);
}

/**
 * One command capsule at s (SQE zeroed, NSID set) for n blocks from lba; returns its length.
 * Data: in-capsule (small writes, the DSM range) or a keyed SGL on [run, run + runLen).
 */
@inline function capsule(a: u32, s: u32, op: u32, cid: u32, lba: u64, n: u32, inCapsule: bool, bytes: u32, run: u32, runLen: u32, key: u32): u32 {
  const sgl = s + SQE_SGL1;
  let opc: u32 = IO_FLUSH;
  let len: u32 = SQE_SIZE;
  if (op == BlkOp.READ || op == BlkOp.WRITE) {
    opc = op == BlkOp.READ ? IO_READ : IO_WRITE;
    store<u64>(s + SQE_CDW10, lba);
    store<u32>(s + SQE_CDW12, n - 1);
    if (inCapsule) {
      gather(a, s + CAPSULE_DATA_OFF);
      sglInCapsule(sgl, bytes);
      len += bytes;
      count(Counter.nvmf_incapsule_writes);
    } else sglKeyed(sgl, run, runLen, key);
  } else if (op == BlkOp.WRITE_ZEROES) {
    opc = IO_WRITE_ZEROES;
    store<u64>(s + SQE_CDW10, lba);
    store<u32>(s + SQE_CDW12, n - 1);
    sglKeyed(sgl, 0, 0, 0);
  } else if (op == BlkOp.DISCARD) {
    // One deallocate range, carried in the capsule (NR = 0 in CDW10); NLB is 32 bits here.
    opc = IO_DSM;
    store<u32>(s + SQE_CDW11, DSM_AD);
    const rg = s + CAPSULE_DATA_OFF;
    store<u32>(rg, 0);
    store<u32>(rg + 4, n);
    store<u64>(rg + 8, lba);
    sglInCapsule(sgl, DSM_RANGE_BYTES);
    len += DSM_RANGE_BYTES;
  } else sglKeyed(sgl, 0, 0, 0); // FLUSH: no data (a null keyed descriptor, as Linux sends)
  store<u32>(s + SQE_CDW0, opc | CDW0_PSDT_SGL | (cid << 16));
  return len;
}

@inline function refuse(r: u32, reason: Counter, st: BlkStatus): bool {
  count(reason);
  blkFail(r, st);
  return true;
}

/** The request's segments, in order, into dst (in-capsule data; at most INCAPSULE_MAX bytes). */
@inline function gather(a: u32, dst: u32): void {
  const n = load<u32>(a + R_NSEGS);
  let s = a + R_SEGS;
  const end = s + n * SEG_SIZE;
  while (s < end) {
    const len = load<u32>(s + 4);
    memory.copy(dst, load<u32>(s), len);
    dst += len;
    s += SEG_SIZE;
  }
}

/** Keyed SGL data block descriptor (base §4.1.2.1, NVMe-oF §7.3.2): address, length u24, key, 0x40. */
@inline function sglKeyed(d: u32, addr: u32, len: u32, key: u32): void {
  store<u64>(d + SGL_ADDR, <u64>addr);
  store<u16>(d + SGL_KEYED_LEN, <u16>len);
  store<u8>(d + SGL_KEYED_LEN + 2, <u8>(len >> 16));
  store<u32>(d + SGL_KEYED_KEY, key);
  store<u8>(d + SGL_ID, <u8>SGL_ID_KEYED);
}

/** Data block descriptor, offset subtype: in-capsule data at offset 0 after the SQE (NVMe-oF §7.3.2). */
@inline function sglInCapsule(d: u32, len: u32): void {
  store<u64>(d + SGL_ADDR, 0);
  store<u32>(d + SGL_LEN, len);
  store<u8>(d + SGL_ID, <u8>SGL_ID_INCAPSULE);
}

// ---- completions ----

/**
 * Reap every set-up queue's completion queue: response capsules complete their requests (or
 * fill a setup command's result), SEND completions free slots; a QP that left RTS or an error
 * completion fails the queue. Then waiting requests take the slots that came free.
 */
export function nvmfReap(): void {
  for (let q: u32 = 0; q < NVMF_MAX_QUEUES; q++) {
    const qa = nqAddr(q);
    if (!bound(qState(qa))) continue; // no QP of ours (its old one may already serve another queue)
    const qpn = load<u32>(qa + NQ_QPN);
    const c = rcAddr(qpn);
    const prod = load<u32>(c + RCC_CQ_PROD);
    let cons = load<u32>(c + RCC_CQ_CONS);
    while (cons != prod) {
      const e = c - RCQ_CTRL + RCQ_CQ + (cons % RC_CQ_DEPTH) * RC_CQE_SIZE;
      cons++;
      if (!bound(qState(qa))) continue; // flushes of a connection already lost
      const wrid = load<u32>(e + CQE_WRID);
      if (wrid & WRID_RECV) onRecv(q, qa, e, wrid & WRID_INDEX_MASK);
      else onSend(q, qa, e, wrid & WRID_INDEX_MASK);
    }
    store<u32>(c + RCC_CQ_CONS, cons);
    const st = qState(qa);
    if (!bound(st)) continue;
    if (qpState(qpn) != QpState.RTS || !flushRecv(qa)) { queueLost(q, qa); continue; }
    if (st == NvmfQueueState.LIVE) drainWaiters(q, qa);
  }
}

/**
 * Post what this poll wrote: one rcPostSend per queue (after the front ends submitted), and
 * put those capsules on the wire in this same round (the RC engine's service of that QP).
 */
export function nvmfFlush(): void {
  for (let q: u32 = 0; q < NVMF_MAX_QUEUES; q++) {
    const qa = nqAddr(q);
    const st = qState(qa);
    if (!bound(st) || load<u32>(qa + NQ_TO_POST) == 0) continue;
    flushSend(q, qa);
    if (bound(qState(qa))) rcService(load<u32>(qa + NQ_QPN));
  }
}

/** A response capsule in buffer j (or the RECV's error). The buffer is posted again at once. */
function onRecv(q: u32, qa: u32, e: u32, j: u32): void {
  if (load<u32>(e + CQE_STATUS) != WcStatus.SUCCESS) { count(Counter.err_nvmf_send_failed); queueLost(q, qa); return; }
  if (j >= load<u32>(qa + NQ_NRESP)) { count(Counter.err_nvmf_bad_response); return; }
  const b = respAddr(q, j);
  const len = load<u32>(e + CQE_BYTE_LEN);
  const dw3 = load<u32>(b + CQE_DW3);
  const sqid = load<u32>(b + CQE_DW2) >> CQE_SQID_SHIFT;
  writeRecv(q, qa, j); // the CQE is read below, before the next receive batch can land there
  if (len != CQE_SIZE || sqid != load<u32>(qa + NQ_QID)) { count(Counter.err_nvmf_bad_response); return; }
  const cid = dw3 & 0xffff;
  const i = cid & CID_SLOT_MASK;
  const m = metaAddr(q, i);
  const st = load<u32>(m + SM_STATE);
  if (i >= load<u32>(qa + NQ_DEPTH) || load<u32>(m + SM_CID) != cid || (st != SlotState.POSTED && st != SlotState.SENT)) {
    count(Counter.err_nvmf_stale_response);
    return;
  }
  count(Counter.nvmf_responses);
  store<f64>(qa + NQ_PROGRESS_AT, load<f64>(G_NOW));
  const r = load<u32>(m + SM_REQ);
  if (r == SM_RAW) {
    memory.copy(m + SM_CQE, b, CQE_SIZE);
    slotSetState(qa, m, i, st == SlotState.SENT ? SlotState.RAW_READY : SlotState.ANSWERED);
    return;
  }
  slotSetState(qa, m, i, st == SlotState.SENT ? SlotState.FREE : SlotState.ANSWERED);
  if (!reqLive(r)) { count(Counter.err_nvmf_stale_response); return; }
  if (load<u32>(qa + NQ_OUTAGE) != 0) outageEnd(qa); // the first answer after a reconnect
  complete(r, (dw3 >> CQE_STATUS_SHIFT) & STATUS_MASK);
}

/** Our SEND of the capsule with CID cid completed; an error means the connection is lost (the QP is in ERR). */
function onSend(q: u32, qa: u32, e: u32, cid: u32): void {
  if (load<u32>(e + CQE_STATUS) != WcStatus.SUCCESS) { count(Counter.err_nvmf_send_failed); queueLost(q, qa); return; }
  const i = cid & CID_SLOT_MASK;
  const m = metaAddr(q, i);
  const st = load<u32>(m + SM_STATE);
  if (i >= load<u32>(qa + NQ_DEPTH) || load<u32>(m + SM_CID) != cid || (st != SlotState.POSTED && st != SlotState.ANSWERED)) {
    count(Counter.err_nvmf_stale_response);
    return;
  }
  if (st == SlotState.POSTED) slotSetState(qa, m, i, SlotState.SENT);
  else slotSetState(qa, m, i, load<u32>(m + SM_REQ) == SM_RAW ? SlotState.RAW_READY : SlotState.FREE);
}

/**
 * One answer for request r: NVMe status (SC | SCT) → BlkStatus, the first error kept; the
 * front end completes the request with its last part.
 */
@inline function complete(r: u32, status: u32): void {
  const a = reqAddr(r);
  if (status != 0) {
    count(Counter.err_nvmf_status);
    if (load<u32>(a + R_STATUS) == BlkStatus.OK) store<u32>(a + R_STATUS, status == (S_LBA_OUT_OF_RANGE & STATUS_MASK) ? BlkStatus.LBA_RANGE : BlkStatus.IOERR);
  }
  const left = load<u32>(a + R_PARTS) - 1;
  store<u32>(a + R_PARTS, left);
  if (left != 0) return;
  if (load<u32>(a + R_STATUS) == BlkStatus.OK) {
    const op = load<u32>(a + R_OP);
    if (op == BlkOp.READ) countN(Counter.bytes_read, load<u32>(a + R_BYTES));
    else if (op == BlkOp.WRITE) countN(Counter.bytes_written, load<u32>(a + R_BYTES));
  }
  reqSetState(r, ReqState.DONE);
  reqComplete(r);
}
