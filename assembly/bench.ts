// Benchmark kernels: the firmware's data path next to a raw memory.copy of the same
// blocks, both driven from inside WASM so the measurement has no per-block crossing.
import { MAX_FUNCS } from "./memmap";
import { reqAlloc, reqAddSeg, reqAddr, R_OP, R_LBA, R_NBLOCKS, R_DISK, REQ_NONE, BlkOp } from "./blk/req";
import { blkSubmit, diskBlocks, diskBlockShift } from "./blk/disk";

const BENCH_FUNC: u32 = MAX_FUNCS - 1; // left FuncType.NONE: completions just free the request

@inline function xorshift(x: u32): u32 { x ^= x << 13; x ^= x >> 17; x ^= x << 5; return x; }

/**
 * `n` block reads of `bs` bytes from random blocks of disk d into `nbuf` buffers at
 * card offset dst, through the request pool and blkSubmit (the path every front end takes).
 */
export function benchDataPath(d: u32, dst: u32, nbuf: u32, bs: u32, n: u32, seed: u32): u32 {
  const per = bs >> diskBlockShift(d);
  const slots = <u32>(diskBlocks(d) / <u64>per);
  let x = seed | 1;
  for (let i: u32 = 0; i < n; i++) {
    x = xorshift(x);
    const r = reqAlloc(BENCH_FUNC, 0, i);
    if (r == REQ_NONE) return i;
    const a = reqAddr(r);
    store<u32>(a + R_DISK, d);
    store<u32>(a + R_OP, BlkOp.READ);
    store<u64>(a + R_LBA, <u64>((x % slots) * per));
    store<u32>(a + R_NBLOCKS, per);
    reqAddSeg(r, dst + (i % nbuf) * bs, bs);
    blkSubmit(r);
  }
  return n;
}

/** The same reads as benchDataPath, as bare memory.copy calls: the reference. */
export function benchRawCopy(src: u32, slots: u32, dst: u32, nbuf: u32, bs: u32, n: u32, seed: u32): u32 {
  let x = seed | 1;
  for (let i: u32 = 0; i < n; i++) {
    x = xorshift(x);
    memory.copy(dst + (i % nbuf) * bs, src + (x % slots) * bs, bs);
  }
  return n;
}

