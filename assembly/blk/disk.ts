// Disks: the block devices that functions map to. A RAM disk lives in card memory
// and is served here, inline, with memory.copy; every other backend (file, NBD, ...)
// is served by the host: the request goes on the host-IO ring and comes back on the
// done ring, once per poll (DESIGN rule 2). A remote disk (NVMEOF) is a namespace of an
// NVMe-oF target: its requests leave as command capsules (nvmeof/host.ts).
import { DISK_TABLE_BASE, DISK_ENTRY_SIZE, DISK_KIND_OFF, DISK_BLOCK_SHIFT_OFF, DISK_BLOCKS_OFF,
  DISK_BASE_OFF, HOSTIO_CTRL, HOSTIO_RING, HOSTIO_ENTRIES, HOSTIO_DONE_CTRL, HOSTIO_DONE_RING,
  MAX_REQS } from "../memmap";
import { Counter } from "../counters";
import { count, countN } from "../stats";
import { reqAddr, reqSetState, ReqState, BlkOp, BlkStatus, R_OP, R_LBA, R_NBLOCKS, R_NSEGS, R_SEGS,
  R_STATUS, R_DISK, R_BYTES, SEG_SIZE } from "./req";
import { reqComplete } from "../pipeline";
import { nvmfSubmit } from "../nvmeof/host";

export enum DiskKind { NONE = 0, RAM = 1, HOST = 2, NVMEOF = 3 }

@inline export function diskAddr(d: u32): u32 { return DISK_TABLE_BASE + d * DISK_ENTRY_SIZE; }
@inline export function diskBlockShift(d: u32): u32 { return load<u32>(diskAddr(d) + DISK_BLOCK_SHIFT_OFF); }
@inline export function diskBlocks(d: u32): u64 { return load<u64>(diskAddr(d) + DISK_BLOCKS_OFF); }

/** Finish r with status s now (no data moved). */
export function blkFail(r: u32, s: BlkStatus): void {
  store<u32>(reqAddr(r) + R_STATUS, s);
  reqSetState(r, ReqState.DONE);
  reqComplete(r);
}

/**
 * Execute a PARSED request on its disk. Data segments were window-checked by the
 * front end; the LBA range is checked here against the disk. Completes inline for a
 * RAM disk, hands the request to the host, or sends it to an NVMe-oF target.
 */
export function blkSubmit(r: u32): void {
  const a = reqAddr(r);
  const d = load<u32>(a + R_DISK);
  const da = diskAddr(d);
  const kind = load<u32>(da + DISK_KIND_OFF);
  const op = load<u32>(a + R_OP);
  const lba = load<u64>(a + R_LBA);
  const nblk = <u64>load<u32>(a + R_NBLOCKS);
  const blocks = load<u64>(da + DISK_BLOCKS_OFF);
  if (op != BlkOp.FLUSH && (lba > blocks || nblk > blocks - lba)) {
    count(Counter.err_lba_out_of_range);
    blkFail(r, BlkStatus.LBA_RANGE);
    return;
  }
  if (kind == DiskKind.RAM) {
    ramExecute(a, da, op, lba, <u32>nblk);
    reqSetState(r, ReqState.DONE);
    reqComplete(r);
  } else if (kind == DiskKind.HOST) {
    hostioPost(r);
  } else if (kind == DiskKind.NVMEOF) {
    nvmfSubmit(r);
  } else {
    count(Counter.err_bad_config);
    blkFail(r, BlkStatus.IOERR);
  }
}

@inline function ramExecute(a: u32, da: u32, op: u32, lba: u64, nblk: u32): void {
  const shift = load<u32>(da + DISK_BLOCK_SHIFT_OFF);
  let p = load<u32>(da + DISK_BASE_OFF) + (<u32>lba << shift);
  if (op == BlkOp.READ || op == BlkOp.WRITE) {
    const n = load<u32>(a + R_NSEGS);
    let s = a + R_SEGS;
    const end = s + n * SEG_SIZE;
    const write = op == BlkOp.WRITE;
    while (s < end) {
      const off = load<u32>(s);
      const len = load<u32>(s + 4);
      if (write) memory.copy(p, off, len);
      else memory.copy(off, p, len);
      p += len;
      s += SEG_SIZE;
    }
    countN(write ? Counter.bytes_written : Counter.bytes_read, load<u32>(a + R_BYTES));
  } else if (op == BlkOp.DISCARD || op == BlkOp.WRITE_ZEROES) {
    memory.fill(p, 0, nblk << shift);
  }
  store<u32>(a + R_STATUS, BlkStatus.OK);
}

// ---- host-IO rings ----
// HOSTIO: firmware produces request indexes at [CTRL+0], host consumes at [CTRL+4].
// DONE: host produces at [DONE_CTRL+0] (after writing R_STATUS), firmware consumes at [DONE_CTRL+4].
// Indexes are free-running u32; slot = idx % HOSTIO_ENTRIES. The pool has MAX_REQS
// requests and each ring MAX_REQS slots, so neither ring can overflow.

function hostioPost(r: u32): void {
  const prod = load<u32>(HOSTIO_CTRL);
  if (prod - load<u32>(HOSTIO_CTRL + 4) >= HOSTIO_ENTRIES) {
    count(Counter.err_hostio_ring_full);
    blkFail(r, BlkStatus.IOERR);
    return;
  }
  store<u32>(HOSTIO_RING + (prod % HOSTIO_ENTRIES) * 4, r);
  store<u32>(HOSTIO_CTRL, prod + 1);
  reqSetState(r, ReqState.HOSTIO);
  count(Counter.hostio_posted);
}

/** Complete every request the host has finished. Returns how many. */
export function hostioReap(): u32 {
  const prod = load<u32>(HOSTIO_DONE_CTRL);
  let cons = load<u32>(HOSTIO_DONE_CTRL + 4);
  let n: u32 = 0;
  while (cons != prod) {
    const r = load<u32>(HOSTIO_DONE_RING + (cons % HOSTIO_ENTRIES) * 4);
    cons++;
    if (r >= MAX_REQS || load<u32>(reqAddr(r)) != ReqState.HOSTIO) { count(Counter.err_bad_config); continue; }
    const a = reqAddr(r);
    const op = load<u32>(a + R_OP);
    if (load<u32>(a + R_STATUS) != BlkStatus.OK) count(Counter.err_backend_io);
    else if (op == BlkOp.READ) countN(Counter.bytes_read, load<u32>(a + R_BYTES));
    else if (op == BlkOp.WRITE) countN(Counter.bytes_written, load<u32>(a + R_BYTES));
    count(Counter.hostio_completed);
    reqSetState(r, ReqState.DONE);
    reqComplete(r);
    n++;
  }
  store<u32>(HOSTIO_DONE_CTRL + 4, cons);
  return n;
}
