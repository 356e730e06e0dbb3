// Storage-side SmartNIC (DESIGN.md; issue 3 items 6 and 7): between the RoCEv2 wire and the
// storage controllers. Command distribution: the SEND messages (command capsules) of each target
// QP land in its receive buffers and become entries of the command ring of the controller the
// QP is bound to; a consumed entry gives its buffer back to the QP. WQE fetch: on a doorbell the
// NIC visits the controllers round-robin, fetches one NIC WQE per visit, checks it against the
// controller's own staging window and QPs, turns it into one RC work request (a packet of an
// RDMA WRITE, the response SEND, or an RDMA READ) and transmits it at once, so the wire order is
// the fetch order; after a TAIL or SINGLE packet the tail fast path sends the queue's next WQE
// (the response) before the next controller. DIF: data packets are checked block by block
// against their protection information; a failure makes the command's response carry the
// end-to-end error. Layouts: nic/defs.ts; regions: memmap.ts NIC_*. All state is card memory.
import { Counter } from "../counters";
import { count } from "../stats";
import { NIC_BASE, NIC_CTRLS, NIC_CTRL_SIZE, NIC_MAX_CTRLS, NIC_SQ_DEPTH, NIC_CMD_DEPTH, NIC_EVT_DEPTH, NIC_CTRL_BLOCK,
  NIC_MAX_QPS, NIC_RECV_DEPTH, NIC_RECV_SLOT, NIC_RECV_BASE, NIC_STAGE_BASE, NIC_STAGE_SIZE, NIC_GLOBALS_SIZE, MAX_QPS } from "../memmap";
import {
  NG_FLAGS, NG_DOORBELLS, NG_NEXT_CTRL, NG_ON, NG_RECV_KEY, NG_NQPS, NG_DIF_PENDING, NG_QP_CTRL, NG_QP_RIDX, NG_RIDX_QPN, NG_RIDX_GEN, NG_STAGE_KEY, NG_QP_WOPEN, NG_RIDX_DIF, RBUF_GEN_SHIFT,
  RBUF_INDEX_MASK, NGF_TAIL_FAST_PATH,
  NGF_DIF_CHECK, NIC_NO_CTRL, NC_SQ, NC_CMD, NC_EVT, CB_ON, CB_SQ_TAIL, CB_SQ_HEAD, CB_CMD_PROD, CB_CMD_CONS, CB_EVT_PROD,
  CB_EVT_CONS, CB_DIF_FAILED, CB_DIF_CID, CB_DIF_QPN, CB_DIF_STATUS, CB_CMD_DONE, CB_STAGE_KEY, CB_DIF_TABLE, NIC_DIF_SLOTS,
  DIF_E_VALID, DIF_E_REFTAG, DIF_E_XFER, NW_SIZE, NW_TYPE, NW_FLAGS, NW_CID, NW_QPN, NW_STAGE_OFF, NW_LEN, NW_RADDR, NW_RKEY, NW_TOTAL,
  NW_PI_OFF, NW_REFTAG, NW_BLOCK, NW_TAG, NWF_DIF, NWF_SIGNALED, NW_RESPONSE_LEN, NicWqeType, CMD_SIZE, CMD_QPN, CMD_CAPSULE,
  CMD_LEN, CMD_RECV_SLOT, CMD_FLAGS, CMD_SKIP, NIC_LOST, EV_SIZE, EV_TAG, EV_KIND, EV_STATUS, EV_QPN, EvKind,
} from "./defs";
import { S_E2E_GUARD_ERROR, S_E2E_REFTAG_ERROR, PI_SIZE, PI_GUARD, PI_APPTAG, PI_REFTAG } from "../nvmeof/defs";
import { CQE_DW3, CQE_STATUS_SHIFT, S_DATA_TRANSFER_ERROR } from "../nvme/spec";
import { traceWqeOn, traceWqe } from "../trace";
import { crc16T10DifUpdate } from "../crc";
import { connInit, connDeinit, connCtrlUp, connBound, connForgetSet, connReceive, connEntryOf, connSkip, connFailbackWait, connPosted,
  connCompleted, connHeartbeats, connRetry, connOn, ctrlLive, CONN_NONE } from "./connector";
import { be16, be32 } from "../rdma/headers";
import { txSpace } from "../net/ring";
import { mrRegister, mrDeregister } from "../rdma/mr";
import { qpAddr, QpState, QP_STATE, QP_MTU } from "../rdma/qp";
import { rcAddr, rcOn, rcSetNow } from "../rdma/rc";
import { rcPostBuilt, rcPostRecv, rcTransmit, writePktLenOk } from "../rdma/req";
import {
  RCQ_CTRL, RCQ_SQ, RCQ_RQ, RCQ_CQ, RC_SQ_DEPTH, RC_RQ_DEPTH, RC_CQ_DEPTH, SWQE_SIZE, SWQE_WRID, SWQE_OP, SWQE_LKEY, SWQE_LADDR,
  SWQE_LEN, SWQE_RKEY, SWQE_RADDR, SWQE_IMM, SWF_UNSIGNALED, RWQE_SIZE, RWQE_WRID, RWQE_LADDR, RWQE_LKEY, RWQE_LEN, CQE_SIZE,
  CQE_WRID, CQE_STATUS, CQE_OPCODE, CQE_BYTE_LEN, RCC_SQ_TAIL, RCC_SQ_HEAD, RCC_RQ_TAIL, RCC_CQ_PROD, RCC_CQ_CONS,
  MR_LOCAL_WRITE, WrOp, WcStatus, WcOp,
} from "../rdma/rcdefs";

const NVME_SQE_LEN: u32 = 64; // a command capsule starts with the 64-byte SQE (NVMe-oF 1.1 §2.1)
const RECV_SLOTS: u32 = NIC_MAX_QPS * NIC_RECV_DEPTH;
const RECV_BYTES: u32 = RECV_SLOTS * NIC_RECV_SLOT;
const NO_IDX: u32 = 0xff;
// Send work request ids: WRID_SEND | NicWqeType << 40 | controller << 32 | NW_TAG, so a
// completion names its controller and cookie without a table. Receive ids are the buffer index.
// With connectors, bits 48..62 hold the connector entry + 1 of the command the request serves.
export const WRID_SEND: u64 = <u64>1 << 63;
const WRID_ENTRY_SHIFT: u64 = 48;

@inline export function ctrl(k: u32): u32 { return NIC_CTRLS + k * NIC_CTRL_SIZE; }
@inline function stage(k: u32): u32 { return NIC_STAGE_BASE + k * NIC_STAGE_SIZE; }
@inline export function recvBuf(slot: u32): u32 { return NIC_RECV_BASE + slot * NIC_RECV_SLOT; }
@inline export function qpCtrl(qpn: u32): u32 { return <u32>load<u8>(NIC_BASE + NG_QP_CTRL + qpn); }
@inline export function qpRidx(qpn: u32): u32 { return <u32>load<u8>(NIC_BASE + NG_QP_RIDX + qpn); }
/** Controller k was enabled (its window key lives in NIC globals; CB_ON is the controller's copy to read). */
@inline export function ctrlOn(k: u32): bool { return load<u32>(NIC_BASE + NG_STAGE_KEY + k * 4) != 0; }
@inline export function flags(): u32 { return load<u32>(NIC_BASE + NG_FLAGS); }
@inline export function nicOn(): bool { return load<u32>(NIC_BASE + NG_ON) != 0; }
@inline function setGen(r: u32): u32 { return load<u32>(NIC_BASE + NG_RIDX_GEN + r * 4) & 0xffff; }
/** Buffer index of an id, or RECV_SLOTS when the id is not one of the current generation of a set handed out. */
function rbufIndex(id: u32): u32 {
  const i = id & RBUF_INDEX_MASK;
  const r = i / NIC_RECV_DEPTH;
  if (r >= load<u32>(NIC_BASE + NG_NQPS) || (id >> RBUF_GEN_SHIFT) != setGen(r)) return RECV_SLOTS;
  return i;
}
/** The QP may carry the NIC's work: RC engine on, connected (RTR: the RTU may still be on its way; the WQE waits for RTS). */
@inline function rcUsable(qpn: u32): bool {
  if (!rcOn(qpn)) return false;
  const st = load<u32>(qpAddr(qpn) + QP_STATE);
  return st == QpState.RTS || st == QpState.RTR;
}

// ---- setup ----

/** Clear the NIC (globals, controller blocks, their regions) and register the receive buffers; 0 or a Counter. */
export function nicInit(fl: u32): u32 {
  const oldKey = load<u32>(NIC_BASE + NG_RECV_KEY);
  if (oldKey != 0) mrDeregister(oldKey);
  connDeinit();
  for (let k: u32 = 0; k < NIC_MAX_CTRLS; k++) {
    const sk = load<u32>(NIC_BASE + NG_STAGE_KEY + k * 4);
    if (sk != 0) mrDeregister(sk);
    memory.fill(ctrl(k), 0, NIC_CTRL_BLOCK);
  }
  memory.fill(NIC_BASE, 0, NIC_GLOBALS_SIZE);
  memory.fill(NIC_BASE + NG_QP_CTRL, <u8>NIC_NO_CTRL, MAX_QPS);
  memory.fill(NIC_BASE + NG_QP_RIDX, <u8>NO_IDX, MAX_QPS);
  const key = mrRegister(-1, NIC_RECV_BASE, RECV_BYTES, <u64>NIC_RECV_BASE, MR_LOCAL_WRITE);
  if (key == 0) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  store<u32>(NIC_BASE + NG_RECV_KEY, key);
  const ck = connInit();
  if (ck != 0) return ck;
  store<u32>(NIC_BASE + NG_FLAGS, fl);
  store<u32>(NIC_BASE + NG_ON, 1);
  return 0;
}

export function nicSetFlags(fl: u32): void { store<u32>(NIC_BASE + NG_FLAGS, fl); }

/**
 * Controller k's rings start empty and usable; its staging window becomes a memory region
 * (VA = card offset, local write for READ data). Returns the region's key, or 0 (counted).
 */
export function nicCtrlEnable(k: u32): u32 {
  if (k >= NIC_MAX_CTRLS || !nicOn()) { count(Counter.err_bad_config); return 0; }
  const cb = ctrl(k);
  const old = load<u32>(NIC_BASE + NG_STAGE_KEY + k * 4);
  if (old != 0) mrDeregister(old);
  store<u32>(NIC_BASE + NG_STAGE_KEY + k * 4, 0);
  memory.fill(cb, 0, NIC_CTRL_BLOCK);
  const key = mrRegister(-1, stage(k), NIC_STAGE_SIZE, <u64>stage(k), MR_LOCAL_WRITE);
  if (key == 0) return 0;
  store<u32>(cb + CB_STAGE_KEY, key);
  store<u32>(NIC_BASE + NG_STAGE_KEY + k * 4, key);
  store<u32>(cb + CB_ON, 1);
  connCtrlUp(k);
  return key;
}

/** Post receive buffer `id` (index | generation) on qpn again; false when the QP cannot take it. */
export function repost(qpn: u32, id: u32): bool {
  if (!rcUsable(qpn)) return false;
  const c = rcAddr(qpn);
  const w = c - RCQ_CTRL + RCQ_RQ + (load<u32>(c + RCC_RQ_TAIL) % RC_RQ_DEPTH) * RWQE_SIZE;
  store<u64>(w + RWQE_WRID, <u64>id);
  store<u64>(w + RWQE_LADDR, <u64>recvBuf(id & RBUF_INDEX_MASK));
  store<u32>(w + RWQE_LKEY, load<u32>(NIC_BASE + NG_RECV_KEY));
  store<u32>(w + RWQE_LEN, NIC_RECV_SLOT);
  return rcPostRecv(qpn, 1) == 1;
}

/**
 * Target QP qpn's commands go to controller k (NIC_NO_CTRL: to nobody; rebinding moves the
 * commands that arrive from now on). The first bind gives the QP a set of NIC_RECV_DEPTH
 * receive buffers; they are posted whenever the QP's receive queue is fresh (RC engine just
 * enabled by the CM). Returns 0, or the Counter of the refusal.
 */
export function nicBindQp(qpn: u32, k: u32): u32 {
  if (!nicOn() || qpn >= MAX_QPS || (k >= NIC_MAX_CTRLS && k != NIC_NO_CTRL)) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  if (k != NIC_NO_CTRL && (!rcOn(qpn) || !ctrlOn(k))) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  let r = qpRidx(qpn);
  if (r == NO_IDX && k != NIC_NO_CTRL) {
    r = load<u32>(NIC_BASE + NG_NQPS);
    if (r >= NIC_MAX_QPS) { count(Counter.err_bad_config); return Counter.err_bad_config; }
    store<u32>(NIC_BASE + NG_NQPS, r + 1);
    store<u8>(NIC_BASE + NG_QP_RIDX + qpn, <u8>r);
    store<u32>(NIC_BASE + NG_RIDX_QPN + r * 4, qpn);
  }
  const was = qpCtrl(qpn);
  store<u8>(NIC_BASE + NG_QP_CTRL + qpn, <u8>k);
  if (was == NIC_NO_CTRL || k == NIC_NO_CTRL) connBound(qpn, k);
  if (k == NIC_NO_CTRL && r != NO_IDX) connForgetSet(r, qpn); // its connection ended: nothing of it is answered
  if (r != NO_IDX && rcOn(qpn) && load<u32>(rcAddr(qpn) + RCC_RQ_TAIL) == 0) {
    // A fresh receive queue (the CM connected the QP anew): a new generation of the set, so the
    // buffers a controller still holds from the old connection are not posted twice.
    const gen = (setGen(r) + 1) & 0xffff;
    store<u8>(NIC_BASE + NG_QP_WOPEN + qpn, 0); // no message of the old connection is open on the new one
    difForgetQp(qpn); // nor does a DIF failure of its commands wait for a response on the new one
    connForgetSet(r, qpn); // nor is a command of it in flight
    store<u32>(NIC_BASE + NG_RIDX_GEN + r * 4, gen);
    for (let i: u32 = 0; i < NIC_RECV_DEPTH; i++) repost(qpn, (r * NIC_RECV_DEPTH + i) | (gen << RBUF_GEN_SHIFT));
  }
  return 0;
}

export function nicDoorbell(k: u32): void {
  if (k < NIC_MAX_CTRLS) store<u32>(NIC_BASE + NG_DOORBELLS, load<u32>(NIC_BASE + NG_DOORBELLS) | (1 << k));
}

// ---- events and commands (NIC → controller rings) ----

function event(k: u32, tag: u32, kind: u32, status: u32, qpn: u32): void {
  if (!ctrlLive(k)) return; // a lost controller sees nothing; its commands moved on
  const cb = ctrl(k);
  const p = load<u32>(cb + CB_EVT_PROD);
  if (p - load<u32>(cb + CB_EVT_CONS) >= NIC_EVT_DEPTH) { count(Counter.err_nic_evt_ring_full); return; }
  const e = cb + NC_EVT + (p % NIC_EVT_DEPTH) * EV_SIZE;
  store<u32>(e + EV_TAG, tag);
  store<u32>(e + EV_KIND, kind);
  store<u32>(e + EV_STATUS, status);
  store<u32>(e + EV_QPN, qpn);
  store<u32>(cb + CB_EVT_PROD, p + 1);
  count(Counter.nic_events);
}

/** A command entry for capsule `id` of qpn in controller k's ring; false when the ring is full. */
export function deliver(k: u32, qpn: u32, id: u32, len: u32, fl: u32, skip: u32): bool {
  const cb = ctrl(k);
  const p = load<u32>(cb + CB_CMD_PROD);
  if (p - load<u32>(cb + CB_CMD_DONE) >= NIC_CMD_DEPTH) return false;
  const e = cb + NC_CMD + (p % NIC_CMD_DEPTH) * CMD_SIZE;
  store<u32>(e + CMD_QPN, qpn);
  store<u32>(e + CMD_CAPSULE, recvBuf(id & RBUF_INDEX_MASK));
  store<u32>(e + CMD_LEN, len);
  store<u32>(e + CMD_RECV_SLOT, id);
  store<u32>(e + CMD_FLAGS, fl);
  store<u32>(e + CMD_SKIP, skip);
  store<u32>(cb + CB_CMD_PROD, p + 1);
  count(Counter.nic_commands);
  return true;
}

/**
 * The distributor: a received capsule in buffer `id` of qpn goes to its QP's connector and
 * controller's command ring (with connectors the buffer stays held until the command is
 * answered; with no live controller the connector answers it), or is a counted drop (buffer
 * reposted).
 */
function command(qpn: u32, id: u32, len: u32): void {
  const k = qpCtrl(qpn);
  let why: u32 = 0;
  if (len < NVME_SQE_LEN) why = Counter.err_nic_short_capsule;
  else if (k == NIC_LOST && connOn()) { connReceive(qpn, id, len, k); return; }
  else if (!ctrlLive(k)) why = Counter.err_nic_unbound_qp;
  else if (load<u32>(ctrl(k) + CB_CMD_PROD) - load<u32>(ctrl(k) + CB_CMD_DONE) >= NIC_CMD_DEPTH) why = Counter.err_nic_cmd_ring_full;
  else {
    if (connOn() && connReceive(qpn, id, len, k) == CONN_NONE) why = Counter.err_nic_bad_index;
    else { deliver(k, qpn, id, len, 0, 0); return; }
  }
  count(<Counter>why);
  repost(qpn, id);
}

/**
 * Command entries controller k consumed since the last round give their receive buffers back.
 * The entry's id is re-checked (the ring is controller-writable): it must name a buffer of a set
 * the NIC handed out, of the set's current generation (an older one was replaced when its QP
 * was connected anew: skipped, nothing is lost); the QP is the set's owner, whatever the entry says.
 */
function returnBuffers(k: u32): u32 {
  const cb = ctrl(k);
  const done = load<u32>(cb + CB_CMD_DONE);
  const cons = load<u32>(cb + CB_CMD_CONS);
  if (cons == done) return 0;
  if (cons - done > load<u32>(cb + CB_CMD_PROD) - done) { count(Counter.err_nic_bad_index); return 0; }
  const nsets = load<u32>(NIC_BASE + NG_NQPS);
  const held = connOn(); // the connector gives the buffer back once the command is answered
  for (let i = done; i != cons; i++) {
    const id = load<u32>(cb + NC_CMD + (i % NIC_CMD_DEPTH) * CMD_SIZE + CMD_RECV_SLOT);
    const r = (id & RBUF_INDEX_MASK) / NIC_RECV_DEPTH;
    if (r >= nsets) { count(Counter.err_nic_bad_index); continue; }
    if (!held && rbufIndex(id) != RECV_SLOTS) repost(load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4), id);
  }
  store<u32>(cb + CB_CMD_DONE, cons);
  return cons - done;
}

/** Completions of qpn's RC queue: capsules received (the parser: typed, attributed, distributed), and the NIC's own work requests done. */
export function reap(qpn: u32): u32 {
  if (!rcOn(qpn)) return 0;
  const c = rcAddr(qpn);
  const prod = load<u32>(c + RCC_CQ_PROD);
  let cons = load<u32>(c + RCC_CQ_CONS);
  const n = prod - cons;
  for (; cons != prod; cons++) {
    const e = c - RCQ_CTRL + RCQ_CQ + (cons % RC_CQ_DEPTH) * CQE_SIZE;
    const wrid = load<u64>(e + CQE_WRID);
    const status = load<u32>(e + CQE_STATUS);
    if (load<u32>(e + CQE_OPCODE) == WcOp.RECV) {
      // A flushed buffer (QP in ERR) is not a capsule; the QP takes no more buffers.
      if (status == WcStatus.SUCCESS && wrid <= <u64>0xffffffff && rbufIndex(<u32>wrid) != RECV_SLOTS) command(qpn, <u32>wrid, load<u32>(e + CQE_BYTE_LEN));
      continue;
    }
    if ((wrid & WRID_SEND) == 0) continue;
    const k = <u32>(wrid >> 32) & 0xff;
    const type = <u32>(wrid >> 40) & 0xff;
    const ent = <u32>(wrid >> WRID_ENTRY_SHIFT) & 0x7fff;
    if (ent != 0 && connOn() && !connCompleted(ent - 1, k, type, status == WcStatus.SUCCESS)) continue;
    if (k >= NIC_MAX_CTRLS) continue;
    const kind = status != WcStatus.SUCCESS ? EvKind.ERROR : type == NicWqeType.READ ? EvKind.READ_DONE : EvKind.SENT;
    event(k, <u32>wrid, kind, status, qpn);
  }
  store<u32>(c + RCC_CQ_CONS, cons);
  return n;
}

// ---- DIF (NVMe base 2.0 §5.3 end-to-end protection, Type 1 reference tags) ----

const DIF_BLOCK_MIN: u32 = 512;
const DIF_BLOCK_MAX: u32 = 4096;
@inline function difState(qpn: u32): u32 { return NIC_BASE + NG_RIDX_DIF + qpRidx(qpn) * 8; }

/**
 * Check the blocks of a data packet of QP qpn (len bytes at card offset d) against their 8-byte
 * PI from pi: guard = CRC-16 T10-DIF of the block, reference tag = ref + block index. A block
 * that does not end in this packet carries its CRC to the message's next one (`fresh`: this
 * packet starts a message). An application tag of FFFFh disables the check of its block (the
 * escape of Type 1). Returns 0, or the NVMe status of the first failure (counted).
 */
function difCheck(qpn: u32, fresh: bool, d: u32, pi: u32, len: u32, blk: u32, ref: u32): u32 {
  count(Counter.nic_dif_checked);
  const s = difState(qpn);
  let crc: u32 = fresh ? 0 : load<u32>(s);
  let have: u32 = fresh ? 0 : load<u32>(s + 4);
  let st: u32 = 0;
  let j: u32 = 0;
  for (let off: u32 = 0; off < len;) {
    const take = min(blk - have, len - off);
    crc = crc16T10DifUpdate(crc, d + off, take);
    have += take;
    off += take;
    if (have < blk) break;
    const p = pi + j * PI_SIZE;
    if (st == 0 && be16(p + PI_APPTAG) != 0xffff) {
      if (crc != be16(p + PI_GUARD)) { count(Counter.err_nic_dif_guard); st = S_E2E_GUARD_ERROR; }
      else if (be32(p + PI_REFTAG) != ref + j) { count(Counter.err_nic_dif_reftag); st = S_E2E_REFTAG_ERROR; }
    }
    j++;
    have = 0;
    crc = 0;
  }
  store<u32>(s, crc);
  store<u32>(s + 4, have);
  return st;
}

/** One pending DIF failure less (saturating: a controller may have planted entries of its own in its table). */
@inline function difDropped(): void {
  const n = load<u32>(NIC_BASE + NG_DIF_PENDING);
  if (n != 0) store<u32>(NIC_BASE + NG_DIF_PENDING, n - 1);
}

/**
 * The pending DIF failure of (qpn, cid) in any controller's table (a QP rebound to another
 * controller keeps it), taken out when `take`: its NVMe status, or 0.
 */
function difFind(qpn: u32, cid: u32, take: bool): u32 {
  if (load<u32>(NIC_BASE + NG_DIF_PENDING) == 0) return 0;
  const key = ((qpn & 0xff) << 16) | (cid & 0xffff);
  let st: u32 = 0;
  for (let k: u32 = 0; k < NIC_MAX_CTRLS; k++) {
    const cb = ctrl(k);
    if (load<u32>(cb + CB_DIF_FAILED) == 0) continue;
    for (let i: u32 = 0; i < NIC_DIF_SLOTS; i++) {
      const s = cb + CB_DIF_TABLE + i * 4;
      const v = load<u32>(s);
      if ((v & DIF_E_VALID) == 0 || (v & 0xffffff) != key) continue;
      if (st == 0) st = (v & DIF_E_XFER) != 0 ? S_DATA_TRANSFER_ERROR : (v & DIF_E_REFTAG) != 0 ? S_E2E_REFTAG_ERROR : S_E2E_GUARD_ERROR;
      if (!take) return st;
      store<u32>(s, 0);
      store<u32>(cb + CB_DIF_FAILED, load<u32>(cb + CB_DIF_FAILED) - 1);
      difDropped();
    }
  }
  return st;
}

/**
 * Remember in controller k's table that the RESPONSE of (qpn, cid) must carry `status`; the
 * first failure of a command is the one its response reports (its other packets may fail too).
 */
function difRemember(k: u32, tag: u32, qpn: u32, cid: u32, status: u32): void {
  const cb = ctrl(k);
  store<u32>(cb + CB_DIF_CID, cid);
  store<u32>(cb + CB_DIF_QPN, qpn);
  store<u32>(cb + CB_DIF_STATUS, status);
  if (difFind(qpn, cid, false) != 0) return; // already failed: its response carries that
  for (let i: u32 = 0; i < NIC_DIF_SLOTS; i++) {
    const s = cb + CB_DIF_TABLE + i * 4;
    if (load<u32>(s) != 0) continue;
    const kind = status == S_DATA_TRANSFER_ERROR ? DIF_E_XFER : status == S_E2E_REFTAG_ERROR ? DIF_E_REFTAG : 0;
    store<u32>(s, DIF_E_VALID | kind | ((qpn & 0xff) << 16) | (cid & 0xffff));
    store<u32>(cb + CB_DIF_FAILED, load<u32>(cb + CB_DIF_FAILED) + 1);
    store<u32>(NIC_BASE + NG_DIF_PENDING, load<u32>(NIC_BASE + NG_DIF_PENDING) + 1);
    return;
  }
  // No room to carry it to the response: tell the controller now, so it fails the command.
  count(Counter.err_nic_dif_table_full);
  event(k, tag, EvKind.DIF_ERROR, status, qpn);
}

/** Drop every pending DIF failure of QP qpn (its connection ended: those responses will never come). */
function difForgetQp(qpn: u32): void {
  for (let k: u32 = 0; k < NIC_MAX_CTRLS; k++) {
    const cb = ctrl(k);
    if (load<u32>(cb + CB_DIF_FAILED) == 0) continue;
    for (let i: u32 = 0; i < NIC_DIF_SLOTS; i++) {
      const s = cb + CB_DIF_TABLE + i * 4;
      const v = load<u32>(s);
      if (v == 0 || ((v >> 16) & 0xff) != (qpn & 0xff)) continue;
      store<u32>(s, 0);
      store<u32>(cb + CB_DIF_FAILED, load<u32>(cb + CB_DIF_FAILED) - 1);
      difDropped();
    }
  }
}

// ---- WQE fetch ----

const SEND_LIMIT: u32 = min(RC_SQ_DEPTH, RC_CQ_DEPTH - NIC_RECV_DEPTH); // RC work requests in flight per QP
const FETCH_BLOCKED: u32 = 0; // left in the queue: the QP's send queue or the TX ring is full
const FETCH_SENT: u32 = 1; // posted and transmitted
const FETCH_REFUSED: u32 = 2; // consumed with an ERROR event (counted)
let fetchedType: u32 = 0; // NicWqeType of the last WQE fetch() sent
let txFull = false; // the TX ring filled during this round: stop fetching

/**
 * Why WQE w of controller k cannot be sent (a Counter), or 0: its type; its QP (bound to k,
 * driven by the RC engine, connected); its place in its QP's WRITE message; its lengths against
 * the path MTU and the message total; every offset it names (payload, PI) inside k's staging
 * window, computed in 64 bits.
 */
function wqeCheck(k: u32, w: u32, type: u32): u32 {
  if (type > <u32>NicWqeType.READ) return Counter.err_nic_bad_wqe;
  const qpn = load<u32>(w + NW_QPN);
  // With connectors the command's entry names its owner (a QP failing back has two); else the QP's binding.
  if (qpn >= MAX_QPS || (!connOn() && qpCtrl(qpn) != k) || !rcUsable(qpn)) return Counter.err_nic_wqe_qp;
  // The packets of a WRITE message go out back to back on their QP (§9.7.2 opcode sequence):
  // only INTERMEDIATE / TAIL while one is open, anything else only when none is.
  const open = load<u8>(NIC_BASE + NG_QP_WOPEN + qpn) != 0;
  if (open != (type == NicWqeType.INTERMEDIATE || type == NicWqeType.TAIL)) return Counter.err_nic_bad_wqe;
  const off = <u64>load<u32>(w + NW_STAGE_OFF);
  const len = load<u32>(w + NW_LEN);
  const total = load<u32>(w + NW_TOTAL);
  let bytes = len;
  if (type == NicWqeType.RESPONSE) {
    if (len != NW_RESPONSE_LEN) return Counter.err_nic_bad_wqe;
  } else if (type == NicWqeType.READ) {
    if (total == 0 || (len != 0 && len != total)) return Counter.err_nic_bad_wqe;
    bytes = total;
  } else {
    if (!writePktLenOk(type + 1, len, total, load<u32>(qpAddr(qpn) + QP_MTU))) return Counter.err_nic_bad_wqe;
    if ((load<u8>(w + NW_FLAGS) & NWF_DIF) != 0 && (flags() & NGF_DIF_CHECK) != 0) {
      const blk = load<u32>(w + NW_BLOCK);
      if (blk < DIF_BLOCK_MIN || blk > DIF_BLOCK_MAX || popcnt(blk) != 1) return Counter.err_nic_bad_wqe;
      // Bytes of a block begun in an earlier packet; the message must end on a block boundary.
      const have: u32 = type == NicWqeType.INITIAL || type == NicWqeType.SINGLE ? 0 : load<u32>(difState(qpn) + 4);
      if ((type == NicWqeType.TAIL || type == NicWqeType.SINGLE) && (have + len) % blk != 0) return Counter.err_nic_bad_wqe;
      if (<u64>load<u32>(w + NW_PI_OFF) + <u64>((have + len) / blk) * PI_SIZE > <u64>NIC_STAGE_SIZE) return Counter.err_nic_wqe_bounds;
    }
  }
  if (off + <u64>bytes > <u64>NIC_STAGE_SIZE) return Counter.err_nic_wqe_bounds;
  return 0;
}

/** The RC work request for NIC WQE w (checked) at qpn's send queue tail, posted and transmitted. */
function post(k: u32, w: u32, type: u32, qpn: u32, ent: u32): void {
  const c = rcAddr(qpn);
  const s = c - RCQ_CTRL + RCQ_SQ + (load<u32>(c + RCC_SQ_TAIL) % RC_SQ_DEPTH) * SWQE_SIZE;
  const fl = <u32>load<u8>(w + NW_FLAGS);
  const signaled = (fl & NWF_SIGNALED) != 0 || type == NicWqeType.READ;
  let op: u32 = WrOp.WRITE_PKT;
  let len = load<u32>(w + NW_LEN);
  if (type == NicWqeType.RESPONSE) op = WrOp.SEND;
  else if (type == NicWqeType.READ) { op = WrOp.READ; len = load<u32>(w + NW_TOTAL); }
  const pos: u32 = op == WrOp.WRITE_PKT ? type + 1 : 0; // INITIAL..SINGLE → Pos FIRST..ONLY
  const eb: u64 = ent == CONN_NONE ? 0 : <u64>(ent + 1) << WRID_ENTRY_SHIFT;
  store<u64>(s + SWQE_WRID, WRID_SEND | eb | (<u64>type << 40) | (<u64>k << 32) | <u64>load<u32>(w + NW_TAG));
  store<u32>(s + SWQE_OP, op | (pos << 8) | ((signaled ? 0 : SWF_UNSIGNALED) << 16)); // OP, POS, FLAGS
  store<u32>(s + SWQE_LKEY, load<u32>(NIC_BASE + NG_STAGE_KEY + k * 4));
  const card = stage(k) + load<u32>(w + NW_STAGE_OFF); // inside k's window: wqeCheck
  store<u64>(s + SWQE_LADDR, <u64>card); // the window's VA is its card offset
  store<u32>(s + SWQE_LEN, len);
  store<u32>(s + SWQE_RKEY, load<u32>(w + NW_RKEY));
  store<u64>(s + SWQE_RADDR, load<u64>(w + NW_RADDR));
  store<u32>(s + SWQE_IMM, load<u32>(w + NW_TOTAL));
  rcPostBuilt(qpn, card);
  if (type == NicWqeType.INITIAL) store<u8>(NIC_BASE + NG_QP_WOPEN + qpn, 1);
  else if (type == NicWqeType.TAIL) store<u8>(NIC_BASE + NG_QP_WOPEN + qpn, 0);
  const q = qpAddr(qpn);
  if (load<u32>(q + QP_STATE) == QpState.RTS) rcTransmit(qpn, c, q); // now: the wire order is the fetch order
  count(Counter.nic_packets_sent);
}

/** The WQE fetch trace (testbed "wqe" events): one flag load when off. */
@inline function traceFetch(k: u32, w: u32, type: u32, index: u32, refused: u32): void {
  if (traceWqeOn()) traceWqe(k, type, load<u32>(w + NW_QPN), <u32>load<u16>(w + NW_CID), index, refused);
}

/** Fetch the WQE at controller k's send queue head: FETCH_SENT, FETCH_REFUSED or FETCH_BLOCKED. */
function fetch(k: u32): u32 {
  const cb = ctrl(k);
  const head = load<u32>(cb + CB_SQ_HEAD);
  const w = cb + NC_SQ + (head % NIC_SQ_DEPTH) * NW_SIZE;
  const type = <u32>load<u8>(w + NW_TYPE);
  let ent = CONN_NONE;
  let bad: u32 = 0;
  if (connOn()) {
    const wq = load<u32>(w + NW_QPN);
    ent = wq < MAX_QPS ? connEntryOf(k, w, wq) : CONN_NONE;
    if (ent == CONN_NONE) bad = Counter.err_nic_conn_untracked;
    else if (connSkip(ent, type)) { store<u32>(cb + CB_SQ_HEAD, head + 1); count(Counter.nic_wqes_fetched); traceFetch(k, w, type, head, Counter.nic_conn_skipped); return FETCH_REFUSED; }
    else if (connFailbackWait(wq, k)) return FETCH_BLOCKED;
  }
  if (bad == 0) bad = wqeCheck(k, w, type);
  if (bad != 0) {
    count(<Counter>bad);
    store<u32>(cb + CB_SQ_HEAD, head + 1);
    // A refused data packet or READ leaves the command's data incomplete: its response, if the
    // controller already queued it, must not report success (Data Transfer Error instead).
    const wq = load<u32>(w + NW_QPN);
    if ((type <= <u32>NicWqeType.SINGLE || type == NicWqeType.READ) && wq < MAX_QPS) difRemember(k, load<u32>(w + NW_TAG), wq, <u32>load<u16>(w + NW_CID), S_DATA_TRANSFER_ERROR);
    event(k, load<u32>(w + NW_TAG), EvKind.ERROR, bad, wq);
    count(Counter.nic_wqes_fetched);
    traceFetch(k, w, type, head, bad);
    return FETCH_REFUSED;
  }
  const qpn = load<u32>(w + NW_QPN);
  const c = rcAddr(qpn);
  // Every completion the QP may still produce needs a slot in its completion queue: its send
  // work requests in flight, its receive buffers (NIC_RECV_DEPTH at most) and what is unread.
  const sends = load<u32>(c + RCC_SQ_TAIL) - load<u32>(c + RCC_SQ_HEAD);
  if (sends >= SEND_LIMIT || sends + load<u32>(c + RCC_CQ_PROD) - load<u32>(c + RCC_CQ_CONS) >= SEND_LIMIT) return FETCH_BLOCKED;
  if (txSpace() == 0) { txFull = true; return FETCH_BLOCKED; }
  const d = stage(k) + load<u32>(w + NW_STAGE_OFF);
  const cid = <u32>load<u16>(w + NW_CID);
  if (type <= <u32>NicWqeType.SINGLE) {
    if ((load<u8>(w + NW_FLAGS) & NWF_DIF) != 0 && (flags() & NGF_DIF_CHECK) != 0) {
      const fresh = type == NicWqeType.INITIAL || type == NicWqeType.SINGLE;
      const st = difCheck(qpn, fresh, d, stage(k) + load<u32>(w + NW_PI_OFF), load<u32>(w + NW_LEN), load<u32>(w + NW_BLOCK), load<u32>(w + NW_REFTAG));
      // The packet still goes: the RDMA WRITE message must stay whole; the response says it failed.
      if (st != 0) difRemember(k, load<u32>(w + NW_TAG), qpn, cid, st);
    }
  } else if (type == NicWqeType.RESPONSE) {
    const st = difFind(qpn, cid, true);
    if (st != 0) {
      const dw3 = d + CQE_DW3; // keep CID and phase, replace the status field [31:17]
      store<u32>(dw3, (load<u32>(dw3) & ((1 << CQE_STATUS_SHIFT) - 1)) | (st << CQE_STATUS_SHIFT));
      // (a refused data WQE was reported to its controller by its own ERROR event already)
      if (st != S_DATA_TRANSFER_ERROR) event(k, load<u32>(w + NW_TAG), EvKind.DIF_ERROR, st, qpn);
    }
  }
  post(k, w, type, qpn, ent);
  if (ent != CONN_NONE) connPosted(ent, w, type, qpn);
  store<u32>(cb + CB_SQ_HEAD, head + 1);
  count(Counter.nic_wqes_fetched);
  fetchedType = type;
  traceFetch(k, w, type, head, 0);
  return FETCH_SENT;
}

const VISIT_AGAIN: u32 = 0x80000000; // visit() flag: the fast path still owes this controller its next WQE

/**
 * One visit of controller k: one WQE, and with the tail fast path after a TAIL / SINGLE the
 * queue's next WQE too (when `left` allows; else VISIT_AGAIN keeps the round-robin here).
 * Returns the WQEs taken (| VISIT_AGAIN).
 */
function visit(k: u32, left: u32): u32 {
  const cb = ctrl(k);
  const bit: u32 = 1 << k;
  const db = NIC_BASE + NG_DOORBELLS;
  if (!ctrlLive(k)) { store<u32>(db, load<u32>(db) & ~bit); return 0; }
  const head = load<u32>(cb + CB_SQ_HEAD);
  const tail = load<u32>(cb + CB_SQ_TAIL);
  if (head == tail) { store<u32>(db, load<u32>(db) & ~bit); return 0; }
  if (tail - head > NIC_SQ_DEPTH) {
    // The controller moved its tail past a whole queue: nothing in it can be trusted.
    count(Counter.err_nic_bad_index);
    event(k, 0, EvKind.ERROR, Counter.err_nic_bad_index, 0);
    store<u32>(cb + CB_SQ_HEAD, tail);
    store<u32>(db, load<u32>(db) & ~bit);
    return 0;
  }
  const r = fetch(k);
  if (r == FETCH_BLOCKED) return 0;
  let n: u32 = 1;
  if (r == FETCH_SENT && (fetchedType == NicWqeType.TAIL || fetchedType == NicWqeType.SINGLE) && (flags() & NGF_TAIL_FAST_PATH) != 0
    && head + 1 != tail) {
    if (left <= 1 || txFull) return n | VISIT_AGAIN;
    const r2 = fetch(k);
    if (r2 == FETCH_BLOCKED) return n | VISIT_AGAIN;
    if (r2 == FETCH_SENT) count(Counter.nic_fast_path_sends);
    n++;
  }
  if (load<u32>(cb + CB_SQ_HEAD) == tail) store<u32>(db, load<u32>(db) & ~bit);
  return n;
}

/** WQE fetch: controllers round-robin from NG_NEXT_CTRL, one visit each, up to budget WQEs. */
function fetchRound(budget: u32): u32 {
  txFull = false;
  let k = load<u32>(NIC_BASE + NG_NEXT_CTRL) % NIC_MAX_CTRLS;
  let done: u32 = 0;
  let idle: u32 = 0;
  while (done < budget && idle < NIC_MAX_CTRLS && !txFull) {
    const db = load<u32>(NIC_BASE + NG_DOORBELLS);
    const cb = ctrl(k);
    let r: u32 = 0;
    if ((db & (1 << k)) != 0 || load<u32>(cb + CB_SQ_HEAD) != load<u32>(cb + CB_SQ_TAIL)) r = visit(k, budget - done);
    if ((r & VISIT_AGAIN) != 0) { done += r & ~VISIT_AGAIN; break; } // the next round starts here, with the response
    k = (k + 1) % NIC_MAX_CTRLS;
    if (r == 0) idle++;
    else { idle = 0; done += r; }
  }
  store<u32>(NIC_BASE + NG_NEXT_CTRL, k);
  return done;
}

/**
 * One NIC round at virtual time now (ns): receive side (consumed commands give their buffers
 * back; every NIC QP's completions become commands or events), then WQE fetch. Returns the
 * work done: WQEs fetched + completions and consumed commands handled.
 */
export function nicPoll(budget: u32, now: f64): u32 {
  if (!nicOn()) return 0;
  rcSetNow(now);
  connHeartbeats(now);
  let n: u32 = 0;
  for (let k: u32 = 0; k < NIC_MAX_CTRLS; k++) if (ctrlLive(k)) n += returnBuffers(k);
  const nsets = load<u32>(NIC_BASE + NG_NQPS);
  for (let r: u32 = 0; r < nsets; r++) n += reap(load<u32>(NIC_BASE + NG_RIDX_QPN + r * 4));
  connRetry();
  return n + fetchRound(budget);
}
