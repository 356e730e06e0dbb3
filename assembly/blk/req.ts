// The request pool and the request lifecycle (DESIGN rule 6).
// Every block request, whatever front end parsed it, lives in one REQ_SIZE slot of
// card memory from the moment it is parsed until its completion is written back.
//
//   FREE ──alloc──▶ PARSED ──blkSubmit──▶ HOSTIO ──host done──▶ DONE ──complete──▶ FREE
//                        │            └─▶ FABRIC ──response capsule / failure──▶ DONE
//                        └──────────── RAM disk / error ───────▶ DONE
// FABRIC: an NVMe-oF disk's request, waiting for a capsule slot or in flight (nvmeof/host.ts).
import { REQ_BASE, REQ_SIZE, MAX_REQS, MAX_SEGS, GLOBALS_BASE } from "../memmap";

export enum ReqState { FREE = 0, PARSED = 1, HOSTIO = 2, DONE = 3, FABRIC = 4 }

/** Block operations, shared by every front end and backend. */
export enum BlkOp { READ = 0, WRITE = 1, FLUSH = 2, DISCARD = 3, WRITE_ZEROES = 4 }

/** Outcome of a block request; front ends map it to their own status codes. */
export enum BlkStatus { OK = 0, IOERR = 1, UNSUPP = 2, LBA_RANGE = 3 }

// Request layout (offsets inside a slot).
export const R_STATE: u32 = 0;
export const R_FUNC: u32 = 4;
export const R_QUEUE: u32 = 8;
export const R_ID: u32 = 12; // front end's id: virtio head / packed buffer id, NVMe CID
export const R_OP: u32 = 16; // BlkOp
export const R_NSEGS: u32 = 20;
export const R_LBA: u32 = 24; // u64, in the disk's blocks
export const R_NBLOCKS: u32 = 32;
export const R_STATUS: u32 = 36; // BlkStatus
export const R_BYTES: u32 = 40; // data bytes moved (virtio used.len, counters)
export const R_AUX0: u32 = 44; // front end's own: e.g. virtio status-byte card offset
export const R_AUX1: u32 = 48; // front end's own: e.g. NVMe SQ head at fetch
export const R_NEXT: u32 = 52; // free-list link
export const R_DISK: u32 = 56;
export const R_PARTS: u32 = 60; // FABRIC: commands of this request not yet answered (nvmeof/host.ts)
export const R_SEGS: u32 = 64; // MAX_SEGS x { card offset u32, length u32 }, already window-checked
export const SEG_SIZE: u32 = 8;

// Free list head lives in the globals block after the memmap's named globals.
const FREE_HEAD: u32 = GLOBALS_BASE + 64;
const IN_USE: u32 = GLOBALS_BASE + 68;
const NONE: u32 = 0xffffffff;

@inline export function reqAddr(r: u32): u32 { return REQ_BASE + r * REQ_SIZE; }

export function reqPoolInit(): void {
  for (let r: u32 = 0; r < MAX_REQS; r++) {
    const a = reqAddr(r);
    store<u32>(a + R_STATE, ReqState.FREE);
    store<u32>(a + R_NEXT, r + 1 < MAX_REQS ? r + 1 : NONE);
  }
  store<u32>(FREE_HEAD, 0);
  store<u32>(IN_USE, 0);
}

/** A PARSED request for (func, queue, id), or NONE when the pool is empty. */
@inline export function reqAlloc(func: u32, queue: u32, id: u32): u32 {
  const r = load<u32>(FREE_HEAD);
  if (r == NONE) return NONE;
  const a = reqAddr(r);
  store<u32>(FREE_HEAD, load<u32>(a + R_NEXT));
  store<u32>(IN_USE, load<u32>(IN_USE) + 1);
  store<u32>(a + R_STATE, ReqState.PARSED);
  store<u32>(a + R_FUNC, func);
  store<u32>(a + R_QUEUE, queue);
  store<u32>(a + R_ID, id);
  store<u32>(a + R_NSEGS, 0);
  store<u32>(a + R_STATUS, BlkStatus.OK);
  store<u32>(a + R_BYTES, 0);
  store<u64>(a + R_LBA, 0);
  store<u32>(a + R_NBLOCKS, 0);
  return r;
}

/** Append a window-checked segment; false when the request already has MAX_SEGS. */
@inline export function reqAddSeg(r: u32, cardOff: u32, len: u32): bool {
  const a = reqAddr(r);
  const n = load<u32>(a + R_NSEGS);
  if (n >= MAX_SEGS) return false;
  const s = a + R_SEGS + n * SEG_SIZE;
  store<u32>(s, cardOff);
  store<u32>(s + 4, len);
  store<u32>(a + R_NSEGS, n + 1);
  store<u32>(a + R_BYTES, load<u32>(a + R_BYTES) + len);
  return true;
}

/** The one transition function of the request lifecycle. */
@inline export function reqSetState(r: u32, to: ReqState): void {
  store<u32>(reqAddr(r) + R_STATE, to);
}

@inline export function reqFree(r: u32): void {
  const a = reqAddr(r);
  store<u32>(a + R_STATE, ReqState.FREE);
  store<u32>(a + R_NEXT, load<u32>(FREE_HEAD));
  store<u32>(FREE_HEAD, r);
  store<u32>(IN_USE, load<u32>(IN_USE) - 1);
}

export function reqsInUse(): u32 { return load<u32>(IN_USE); }

export const REQ_NONE: u32 = NONE;
