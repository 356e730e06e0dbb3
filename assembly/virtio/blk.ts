// virtio-blk front end (virtio 1.2 §5.2): service a virtqueue (sync a batch of chains
// into the shadow ring, parse each from the shadow copy, submit to the disk) and write
// completions (status byte, used element). Interrupts: one decision per queue per
// service call (ring.ts queueFlush).
import { Counter } from "../counters";
import { count, countN } from "../stats";
import { translate, INVALID } from "../dma";
import { FUNC_PRIVATE_OFF, FUNC_ENABLED_OFF, FUNC_FEATURES_LO_OFF, FUNC_FEATURES_HI_OFF, MAX_QUEUES } from "../memmap";
import { funcAddr, funcGuest, funcDisk, queueAddr, shadowAddr, scratchAddr, doorbellSet } from "../pcie/func";
import { diskBlockShift } from "../blk/disk";
import { blkSubmit } from "../blk/disk";
import { reqAlloc, reqAddr, reqFree, REQ_NONE, BlkOp, BlkStatus, R_FUNC, R_QUEUE, R_ID, R_OP, R_LBA,
  R_NBLOCKS, R_STATUS, R_BYTES, R_AUX0, R_AUX1, R_DISK, R_NSEGS, R_SEGS, SEG_SIZE } from "../blk/req";
import { syncSplit, syncPacked, usedPush, queueFlush } from "./ring";
import { irqSignal } from "../pcie/irq";
import {
  DESCF_WRITE, BLK_HDR_SIZE, BLK_HDR_TYPE, BLK_HDR_SECTOR, BLK_T_IN, BLK_T_OUT, BLK_T_FLUSH,
  BLK_T_GET_ID, BLK_T_DISCARD, BLK_T_WRITE_ZEROES, BLK_S_OK, BLK_S_IOERR, BLK_S_UNSUPP, BLK_ID_BYTES,
  SECTOR_SHIFT, DWZ_SEG_SIZE, DWZ_SECTOR, DWZ_NUM, DWZ_FLAGS, DWZ_F_UNMAP, MAX_XFER,
  MAX_DISCARD_SECTORS, QS_READY, QS_BROKEN, Q_STATE, Q_MODE, Q_IN_SERVICE, QM_PACKED, SH_CHAINS,
  SH_CHAIN_SIZE, SHC_ID, SHC_ERR, SHC_FIRST, SHC_NDESC, SHC_RING_N, SHC_NO_ID, SH_DESCS,
  SH_DESC_SIZE, SYNC_BATCH, NO_VECTOR, SHD_ADDR, SHD_LEN, SHD_FLAGS, SEG_OFF, SEG_LEN,
} from "./layout";

// Function-private words (FUNC_PRIVATE_OFF, 32 bytes).
export const FP_GEN: u32 = 0; // bumped on every reset: completions of older requests are dropped
export const FP_NEEDS_RESET: u32 = 4; // a queue broke: the device model shows DEVICE_NEEDS_RESET
export const FP_CONFIG_VECTOR: u32 = 8; // config_msix_vector: where a configuration change is signalled

// Scratch layout (scratchAddr(f), 8 KiB): the copied header, a 16-byte payload, the segment list.
const SC_HDR: u32 = 0;
const SC_PAYLOAD: u32 = 16;
const SC_ID: u32 = 32;
const SC_SEGS: u32 = 64; // MAX_CHAIN x {card offset u32, len u32}

const AUX1_GEN_SHIFT: u32 = 16; // R_AUX1 = ring slots | generation << 16
const AUX1_RING_N_MASK: u32 = 0xffff;
const GEN_MASK: u32 = 0xffff;

@inline function fpAddr(f: u32): u32 { return funcAddr(f) + FUNC_PRIVATE_OFF; }

/** Status byte (when there is one) and the used element; the publish happens in queueFlush. */
function finish(f: u32, q: u32, qa: u32, id: u32, ringN: u32, st: u32, status: u32, len: u32): void {
  if (st != INVALID) store<u8>(st, <u8>status);
  usedPush(qa, id, len, ringN);
  // Completed outside a service call (host IO): have this poll publish it.
  if (load<u32>(qa + Q_IN_SERVICE) == 0) doorbellSet(f, q);
}

@inline function failWith(f: u32, q: u32, qa: u32, id: u32, ringN: u32, st: u32, c: Counter, status: u32): void {
  count(c);
  finish(f, q, qa, id, ringN, st, status, 1);
}

// Result of gather(): bytes in the segment list, or the defect.
let gBytes: u64 = 0;
let gErr: u32 = 0;

/**
 * Data segments between the header (first 16 bytes) and the status byte (last byte),
 * window-checked, into the segment list at sl. `write`: the device writes them (IN).
 */
function gather(g: u32, d0: u32, nd: u32, h: u32, st: u32, write: bool, sl: u32): u32 {
  let n: u32 = 0;
  gBytes = 0; gErr = 0;
  const len0 = load<u32>(d0 + SHD_LEN);
  if (len0 > BLK_HDR_SIZE) { // data after the header in the same (readable) descriptor
    if (write) { gErr = Counter.err_virtio_bad_data_dir; return 0; }
    store<u32>(sl + SEG_OFF, h + BLK_HDR_SIZE); store<u32>(sl + SEG_LEN, len0 - BLK_HDR_SIZE);
    gBytes += len0 - BLK_HDR_SIZE; n++;
  }
  let d = d0 + SH_DESC_SIZE;
  const dl = d0 + (nd - 1) * SH_DESC_SIZE;
  for (; d < dl; d += SH_DESC_SIZE) {
    const len = load<u32>(d + SHD_LEN);
    if (((load<u32>(d + SHD_FLAGS) & DESCF_WRITE) != 0) != write) { gErr = Counter.err_virtio_bad_data_dir; return 0; }
    const off = translate(g, load<u64>(d + SHD_ADDR), len);
    if (off == INVALID) { gErr = Counter.err_virtio_desc_out_of_window; return 0; }
    store<u32>(sl + n * SEG_SIZE + SEG_OFF, off); store<u32>(sl + n * SEG_SIZE + SEG_LEN, len);
    gBytes += len; n++;
  }
  const ll = load<u32>(dl + SHD_LEN);
  if (ll > 1) { // data before the status byte in the same (writable) descriptor
    if (!write) { gErr = Counter.err_virtio_bad_data_dir; return 0; }
    store<u32>(sl + n * SEG_SIZE + SEG_OFF, st + 1 - ll); store<u32>(sl + n * SEG_SIZE + SEG_LEN, ll - 1);
    gBytes += ll - 1; n++;
  }
  if (gBytes > MAX_XFER) gErr = Counter.err_virtio_desc_oversized;
  return n;
}

/** Sector (512-byte units) → disk block, or -1 when not on a block boundary. */
@inline function toBlock(x: u64, shift: u32): i64 {
  const s = shift - SECTOR_SHIFT;
  if ((x & ((<u64>1 << s) - 1)) != 0) return -1;
  return <i64>(x >> s);
}

function submit(f: u32, q: u32, qa: u32, id: u32, ringN: u32, st: u32, op: BlkOp, lba: u64, nblk: u32,
                sl: u32, nsegs: u32): void {
  const r = reqAlloc(f, q, id);
  if (r == REQ_NONE) { failWith(f, q, qa, id, ringN, st, Counter.err_no_request_slot, BLK_S_IOERR); return; }
  const a = reqAddr(r);
  store<u32>(a + R_DISK, funcDisk(f));
  store<u32>(a + R_OP, op);
  store<u64>(a + R_LBA, lba);
  store<u32>(a + R_NBLOCKS, nblk);
  store<u32>(a + R_AUX0, st);
  store<u32>(a + R_AUX1, ringN | (load<u32>(fpAddr(f) + FP_GEN) << AUX1_GEN_SHIFT));
  if (nsegs != 0) {
    memory.copy(a + R_SEGS, sl, nsegs * SEG_SIZE);
    store<u32>(a + R_NSEGS, nsegs);
    store<u32>(a + R_BYTES, <u32>gBytes);
  }
  blkSubmit(r);
}

function readWrite(f: u32, q: u32, qa: u32, id: u32, ringN: u32, st: u32, sector: u64, write: bool,
                   g: u32, d0: u32, nd: u32, h: u32, sl: u32): void {
  const n = gather(g, d0, nd, h, st, !write, sl);
  if (gErr != 0) { failWith(f, q, qa, id, ringN, st, gErr, BLK_S_IOERR); return; }
  const shift = diskBlockShift(funcDisk(f));
  const lba = toBlock(sector, shift);
  if (lba < 0 || (gBytes & ((<u64>1 << shift) - 1)) != 0) {
    failWith(f, q, qa, id, ringN, st, Counter.err_virtio_misaligned, BLK_S_IOERR);
    return;
  }
  submit(f, q, qa, id, ringN, st, write ? BlkOp.WRITE : BlkOp.READ, <u64>lba, <u32>(gBytes >> shift), sl, n);
}

/** DISCARD / WRITE_ZEROES (§5.2.6): exactly one {sector, num_sectors, flags} segment. */
function discardZeroes(f: u32, q: u32, qa: u32, id: u32, ringN: u32, st: u32, type: u32,
                       g: u32, d0: u32, nd: u32, h: u32, sl: u32): void {
  const n = gather(g, d0, nd, h, st, false, sl);
  if (gErr != 0) { failWith(f, q, qa, id, ringN, st, gErr, BLK_S_IOERR); return; }
  if (gBytes != <u64>DWZ_SEG_SIZE) { // more than max_discard_seg (1) segments, or a torn one
    failWith(f, q, qa, id, ringN, st, Counter.err_virtio_bad_discard, gBytes > <u64>DWZ_SEG_SIZE ? BLK_S_UNSUPP : BLK_S_IOERR);
    return;
  }
  const p = scratchAddr(f) + SC_PAYLOAD;
  let at: u32 = 0;
  for (let i: u32 = 0; i < n; i++) { // the 16 bytes may span descriptors
    const len = load<u32>(sl + i * SEG_SIZE + SEG_LEN);
    memory.copy(p + at, load<u32>(sl + i * SEG_SIZE + SEG_OFF), len);
    at += len;
  }
  const flags = load<u32>(p + DWZ_FLAGS);
  const allowed = type == BLK_T_WRITE_ZEROES ? DWZ_F_UNMAP : 0; // §5.2.6.2: unmap is for write-zeroes only
  if ((flags & ~allowed) != 0) { failWith(f, q, qa, id, ringN, st, Counter.err_virtio_bad_discard, BLK_S_UNSUPP); return; }
  const num = load<u32>(p + DWZ_NUM);
  const shift = diskBlockShift(funcDisk(f));
  const lba = toBlock(load<u64>(p + DWZ_SECTOR), shift);
  const nb = toBlock(<u64>num, shift);
  if (num > MAX_DISCARD_SECTORS) { failWith(f, q, qa, id, ringN, st, Counter.err_virtio_bad_discard, BLK_S_IOERR); return; }
  if (lba < 0 || nb < 0) { failWith(f, q, qa, id, ringN, st, Counter.err_virtio_misaligned, BLK_S_IOERR); return; }
  submit(f, q, qa, id, ringN, st, type == BLK_T_DISCARD ? BlkOp.DISCARD : BlkOp.WRITE_ZEROES, <u64>lba, <u32>nb, sl, 0);
}

/** GET_ID (§5.2.6): up to 20 bytes of the device's serial into the driver's buffer. */
function getId(f: u32, q: u32, qa: u32, id: u32, ringN: u32, st: u32, g: u32, d0: u32, nd: u32, h: u32, sl: u32): void {
  const n = gather(g, d0, nd, h, st, true, sl);
  if (gErr != 0) { failWith(f, q, qa, id, ringN, st, gErr, BLK_S_IOERR); return; }
  const s = scratchAddr(f) + SC_ID;
  writeSerial(s, f);
  let left = BLK_ID_BYTES, at: u32 = 0;
  for (let i: u32 = 0; i < n && left != 0; i++) {
    const len = min(load<u32>(sl + i * SEG_SIZE + SEG_LEN), left);
    memory.copy(load<u32>(sl + i * SEG_SIZE + SEG_OFF), s + at, len);
    at += len; left -= len;
  }
  finish(f, q, qa, id, ringN, st, BLK_S_OK, at + 1);
}

// "wasm-dpu-vblk-" (ASCII), the serial's prefix; the function number follows.
const SERIAL_PREFIX = memory.data<u8>([0x77, 0x61, 0x73, 0x6d, 0x2d, 0x64, 0x70, 0x75, 0x2d, 0x76, 0x62, 0x6c, 0x6b, 0x2d]);
const SERIAL_PREFIX_LEN: u32 = 14;
const ASCII_0: u32 = 0x30;

/** "wasm-dpu-vblk-<f>" padded with NULs to 20 bytes. */
function writeSerial(s: u32, f: u32): void {
  memory.fill(s, 0, BLK_ID_BYTES);
  memory.copy(s, SERIAL_PREFIX, SERIAL_PREFIX_LEN);
  let at = s + SERIAL_PREFIX_LEN;
  if (f >= 10) store<u8>(at++, <u8>(ASCII_0 + f / 10));
  store<u8>(at, <u8>(ASCII_0 + f % 10));
}

/** Parse one synced chain (shadow record cr) and submit or complete it. */
function parseChain(f: u32, q: u32, qa: u32, g: u32, cr: u32, descs: u32, sc: u32): void {
  const id = load<u32>(cr + SHC_ID);
  const err = load<u32>(cr + SHC_ERR);
  if (id == SHC_NO_ID) { count(<Counter>err); return; } // nothing to complete: a counted drop
  const ringN = load<u32>(cr + SHC_RING_N);
  if (err != 0) { count(<Counter>err); finish(f, q, qa, id, ringN, INVALID, 0, 0); return; }
  const nd = <u32>load<u16>(cr + SHC_NDESC);
  const d0 = descs + <u32>load<u16>(cr + SHC_FIRST) * SH_DESC_SIZE;
  // Status: the last byte of the last descriptor, which the device must be allowed to write.
  const dl = d0 + (nd - 1) * SH_DESC_SIZE;
  if (nd < 2 || (load<u32>(dl + SHD_FLAGS) & DESCF_WRITE) == 0) {
    count(Counter.err_virtio_bad_status_desc);
    finish(f, q, qa, id, ringN, INVALID, 0, 0);
    return;
  }
  const ll = load<u32>(dl + SHD_LEN);
  const sd = translate(g, load<u64>(dl + SHD_ADDR), ll);
  if (sd == INVALID) { count(Counter.err_virtio_desc_out_of_window); finish(f, q, qa, id, ringN, INVALID, 0, 0); return; }
  const st = sd + ll - 1;
  // Header: device-readable, copied into card memory before it is looked at.
  const len0 = load<u32>(d0 + SHD_LEN);
  if ((load<u32>(d0 + SHD_FLAGS) & DESCF_WRITE) != 0 || len0 < BLK_HDR_SIZE) {
    failWith(f, q, qa, id, ringN, st, Counter.err_virtio_bad_header, BLK_S_IOERR);
    return;
  }
  const h = translate(g, load<u64>(d0 + SHD_ADDR), len0);
  if (h == INVALID) { failWith(f, q, qa, id, ringN, st, Counter.err_virtio_desc_out_of_window, BLK_S_IOERR); return; }
  memory.copy(sc + SC_HDR, h, BLK_HDR_SIZE);
  const type = load<u32>(sc + SC_HDR + BLK_HDR_TYPE);
  const sector = load<u64>(sc + SC_HDR + BLK_HDR_SECTOR);
  const sl = sc + SC_SEGS;
  if (type == BLK_T_IN || type == BLK_T_OUT) {
    readWrite(f, q, qa, id, ringN, st, sector, type == BLK_T_OUT, g, d0, nd, h, sl);
  } else if (type == BLK_T_FLUSH) {
    submit(f, q, qa, id, ringN, st, BlkOp.FLUSH, 0, 0, sl, 0);
  } else if (type == BLK_T_GET_ID) {
    getId(f, q, qa, id, ringN, st, g, d0, nd, h, sl);
  } else if (type == BLK_T_DISCARD || type == BLK_T_WRITE_ZEROES) {
    discardZeroes(f, q, qa, id, ringN, st, type, g, d0, nd, h, sl);
  } else {
    failWith(f, q, qa, id, ringN, st, Counter.err_virtio_unsupported_type, BLK_S_UNSUPP);
  }
}

/** Sync and parse up to `budget` chains of queue q; returns how many were taken. */
export function virtioServiceQueue(f: u32, q: u32, budget: u32): u32 {
  const qa = queueAddr(f, q);
  if (q >= MAX_QUEUES || load<u32>(qa + Q_STATE) != QS_READY) return 0;
  // §3.1.1: no buffers are consumed before DRIVER_OK; keep the doorbell for then.
  if (load<u32>(funcAddr(f) + FUNC_ENABLED_OFF) == 0) { doorbellSet(f, q); return 0; }
  const g = funcGuest(f);
  const sh = shadowAddr(f, q);
  const sc = scratchAddr(f);
  const packed = (load<u32>(qa + Q_MODE) & QM_PACKED) != 0;
  store<u32>(qa + Q_IN_SERVICE, 1);
  let taken: u32 = 0;
  while (taken < budget) {
    const want = min(budget - taken, SYNC_BATCH);
    const n = packed ? syncPacked(qa, sh, g, want) : syncSplit(qa, sh, g, want);
    if (n == 0) break;
    countN(Counter.virtio_requests, n);
    let cr = sh + SH_CHAINS;
    for (let i: u32 = 0; i < n; i++, cr += SH_CHAIN_SIZE) parseChain(f, q, qa, g, cr, sh + SH_DESCS, sc);
    taken += n;
  }
  if (load<u32>(qa + Q_STATE) == QS_BROKEN) needsReset(f);
  if (taken >= budget) doorbellSet(f, q); // stopped on the budget: come back next poll
  store<u32>(qa + Q_IN_SERVICE, 0);
  queueFlush(f, q, qa);
  return taken;
}

/** §2.1.2: a broken ring sets DEVICE_NEEDS_RESET and sends a configuration change notification. */
function needsReset(f: u32): void {
  count(Counter.err_virtio_bad_avail_idx);
  const p = fpAddr(f);
  store<u32>(p + FP_NEEDS_RESET, 1);
  const v = load<u32>(p + FP_CONFIG_VECTOR);
  if (v != NO_VECTOR) irqSignal(f, v, 1);
}

/** Map the block layer's outcome to the virtio-blk status byte (§5.2.6). */
@inline function blkStatus(s: u32): u32 {
  if (s == BlkStatus.OK) return BLK_S_OK;
  if (s == BlkStatus.UNSUPP) return BLK_S_UNSUPP;
  return BLK_S_IOERR;
}

/** A request finished on its disk: status byte, used element (len = bytes written incl. status). */
export function virtioBlkComplete(r: u32): void {
  const a = reqAddr(r);
  const f = load<u32>(a + R_FUNC), q = load<u32>(a + R_QUEUE);
  const qa = queueAddr(f, q);
  const aux1 = load<u32>(a + R_AUX1);
  // A reset since this request was parsed: its queue and status byte are no longer the driver's.
  if ((aux1 >>> AUX1_GEN_SHIFT) != (load<u32>(fpAddr(f) + FP_GEN) & GEN_MASK) || load<u32>(qa + Q_STATE) != QS_READY) {
    count(Counter.err_virtio_stale_completion);
    reqFree(r);
    return;
  }
  const status = blkStatus(load<u32>(a + R_STATUS));
  const data = status == BLK_S_OK && load<u32>(a + R_OP) == BlkOp.READ ? load<u32>(a + R_BYTES) : 0;
  finish(f, q, qa, load<u32>(a + R_ID), aux1 & AUX1_RING_N_MASK, load<u32>(a + R_AUX0), status, data + 1);
  reqFree(r);
}

/** After funcReset cleared the queue table: new generation, no features, not DRIVER_OK. */
export function virtioFuncReset(f: u32): void {
  const a = funcAddr(f);
  store<u32>(a + FUNC_ENABLED_OFF, 0);
  store<u32>(a + FUNC_FEATURES_LO_OFF, 0);
  store<u32>(a + FUNC_FEATURES_HI_OFF, 0);
  const p = fpAddr(f);
  store<u32>(p + FP_GEN, (load<u32>(p + FP_GEN) + 1) & GEN_MASK);
  store<u32>(p + FP_NEEDS_RESET, 0);
  store<u32>(p + FP_CONFIG_VECTOR, NO_VECTOR);
}
