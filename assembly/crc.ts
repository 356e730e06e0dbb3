// CRCs of the wire formats, over card memory:
//   CRC-32      reflected 0x04C11DB7 (table poly 0xEDB88320), init ~0, final ~0: Ethernet,
//               zlib, and the RoCEv2 ICRC (IBTA vol. 1 §7.8.1, Annex A17.3.3).
//   CRC-32C     Castagnoli, reflected 0x1EDC6F41 (0x82F63B78), init ~0, final ~0: iSCSI
//               digests (RFC 7143 §13.1), NVMe/TCP digests.
//   CRC-16      T10-DIF, poly 0x8BB7, init 0, not reflected, no final xor: the NVMe
//               end-to-end protection guard (NVMe base 2.0 §5.3.2 / T10 SBC).
// Check values ("123456789"): 0xCBF43926, 0xE3069283, 0xD0DB.
//
// Tables are built once at start-up (this module's top-level code runs in _initialize) into
// the CRC table region of the memory map: slicing-by-16, table k at TABLE + k * 1024,
// entry b at + 4 * b. Long buffers of CRC-32/32C use a 16-stream SIMD kernel (crc32Simd).
import { CRC32_TABLE, CRC32C_TABLE, CRC16_TABLE, CRC_AUX } from "./memmap";

export const CRC32_POLY_REFLECTED: u32 = 0xedb88320;
export const CRC32C_POLY_REFLECTED: u32 = 0x82f63b78;
export const CRC16_T10DIF_POLY: u32 = 0x8bb7;

// ---- table construction ----

function buildReflected(tbl: u32, poly: u32): void {
  for (let b: u32 = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (poly & (0 - (c & 1)));
    store<u32>(tbl + (b << 2), c);
  }
  for (let k: u32 = 1; k < 16; k++) {
    for (let b: u32 = 0; b < 256; b++) {
      const prev = load<u32>(tbl + ((k - 1) << 10) + (b << 2));
      store<u32>(tbl + (k << 10) + (b << 2), (prev >>> 8) ^ load<u32>(tbl + ((prev & 0xff) << 2)));
    }
  }
}

function buildCrc16(tbl: u32): void {
  for (let b: u32 = 0; b < 256; b++) {
    let c = b << 8;
    for (let k = 0; k < 8; k++) c = ((c << 1) ^ (CRC16_T10DIF_POLY & (0 - ((c >> 15) & 1)))) & 0xffff;
    store<u32>(tbl + (b << 2), c);
  }
  // Table k: byte b followed by k zero bytes.
  for (let k: u32 = 1; k < 16; k++) {
    for (let b: u32 = 0; b < 256; b++) {
      const prev = load<u32>(tbl + ((k - 1) << 10) + (b << 2));
      store<u32>(tbl + (k << 10) + (b << 2), ((prev << 8) & 0xffff) ^ load<u32>(tbl + ((prev >> 8) << 2)));
    }
  }
}

// ---- scalar kernels ----

/** Raw register update (no init/final inversion) over [p, p+n) with CRC32_TABLE, slicing-by-16. */
@inline function slice32(crc: u32, p: u32, n: u32): u32 {
  const end16 = p + (n & ~15);
  while (p < end16) {
    crc = crc32Words16(crc, load<u32>(p), load<u32>(p, 4), load<u32>(p, 8), load<u32>(p, 12));
    p += 16;
  }
  if (n & 8) { crc = crc32Words8(crc, load<u32>(p), load<u32>(p, 4)); p += 8; }
  if (n & 4) {
    const a = load<u32>(p) ^ crc;
    crc = load<u32>((a << 2) & 0x3fc, CRC32_TABLE + (3 << 10)) ^ load<u32>((a >>> 6) & 0x3fc, CRC32_TABLE + (2 << 10))
      ^ load<u32>((a >>> 14) & 0x3fc, CRC32_TABLE + (1 << 10)) ^ load<u32>((a >>> 22) & 0x3fc, CRC32_TABLE);
    p += 4;
  }
  const end = p + (n & 3);
  while (p < end) {
    crc = (crc >>> 8) ^ load<u32>(((crc ^ <u32>load<u8>(p)) & 0xff) << 2, CRC32_TABLE);
    p++;
  }
  return crc;
}

/** Raw register update (no init/final inversion) over [p, p+n) with CRC32C_TABLE, slicing-by-16. */
@inline function slice32c(crc: u32, p: u32, n: u32): u32 {
  const end16 = p + (n & ~15);
  while (p < end16) {
    const a = load<u32>(p) ^ crc;
    const b = load<u32>(p, 4);
    const c = load<u32>(p, 8);
    const d = load<u32>(p, 12);
    crc = load<u32>((a << 2) & 0x3fc, CRC32C_TABLE + (15 << 10)) ^ load<u32>((a >>> 6) & 0x3fc, CRC32C_TABLE + (14 << 10))
      ^ load<u32>((a >>> 14) & 0x3fc, CRC32C_TABLE + (13 << 10)) ^ load<u32>((a >>> 22) & 0x3fc, CRC32C_TABLE + (12 << 10))
      ^ load<u32>((b << 2) & 0x3fc, CRC32C_TABLE + (11 << 10)) ^ load<u32>((b >>> 6) & 0x3fc, CRC32C_TABLE + (10 << 10))
      ^ load<u32>((b >>> 14) & 0x3fc, CRC32C_TABLE + (9 << 10)) ^ load<u32>((b >>> 22) & 0x3fc, CRC32C_TABLE + (8 << 10))
      ^ load<u32>((c << 2) & 0x3fc, CRC32C_TABLE + (7 << 10)) ^ load<u32>((c >>> 6) & 0x3fc, CRC32C_TABLE + (6 << 10))
      ^ load<u32>((c >>> 14) & 0x3fc, CRC32C_TABLE + (5 << 10)) ^ load<u32>((c >>> 22) & 0x3fc, CRC32C_TABLE + (4 << 10))
      ^ load<u32>((d << 2) & 0x3fc, CRC32C_TABLE + (3 << 10)) ^ load<u32>((d >>> 6) & 0x3fc, CRC32C_TABLE + (2 << 10))
      ^ load<u32>((d >>> 14) & 0x3fc, CRC32C_TABLE + (1 << 10)) ^ load<u32>((d >>> 22) & 0x3fc, CRC32C_TABLE);
    p += 16;
  }
  if (n & 8) {
    const a = load<u32>(p) ^ crc;
    const b = load<u32>(p, 4);
    crc = load<u32>((a << 2) & 0x3fc, CRC32C_TABLE + (7 << 10)) ^ load<u32>((a >>> 6) & 0x3fc, CRC32C_TABLE + (6 << 10))
      ^ load<u32>((a >>> 14) & 0x3fc, CRC32C_TABLE + (5 << 10)) ^ load<u32>((a >>> 22) & 0x3fc, CRC32C_TABLE + (4 << 10))
      ^ load<u32>((b << 2) & 0x3fc, CRC32C_TABLE + (3 << 10)) ^ load<u32>((b >>> 6) & 0x3fc, CRC32C_TABLE + (2 << 10))
      ^ load<u32>((b >>> 14) & 0x3fc, CRC32C_TABLE + (1 << 10)) ^ load<u32>((b >>> 22) & 0x3fc, CRC32C_TABLE);
    p += 8;
  }
  if (n & 4) {
    const a = load<u32>(p) ^ crc;
    crc = load<u32>((a << 2) & 0x3fc, CRC32C_TABLE + (3 << 10)) ^ load<u32>((a >>> 6) & 0x3fc, CRC32C_TABLE + (2 << 10))
      ^ load<u32>((a >>> 14) & 0x3fc, CRC32C_TABLE + (1 << 10)) ^ load<u32>((a >>> 22) & 0x3fc, CRC32C_TABLE);
    p += 4;
  }
  const end = p + (n & 3);
  while (p < end) {
    crc = (crc >>> 8) ^ load<u32>(((crc ^ <u32>load<u8>(p)) & 0xff) << 2, CRC32C_TABLE);
    p++;
  }
  return crc;
}

// Table addresses are compile-time constants, so every lookup is one load with an immediate offset.
@inline function sliceRefl(tbl: u32, crc: u32, p: u32, n: u32): u32 {
  return tbl == CRC32_TABLE ? slice32(crc, p, n) : slice32c(crc, p, n);
}

/** CRC-32 register after 16 bytes given as four little-endian words (already loaded). */
@inline export function crc32Words16(crc: u32, a: u32, b: u32, c: u32, d: u32): u32 {
  a ^= crc;
  return load<u32>((a << 2) & 0x3fc, CRC32_TABLE + (15 << 10)) ^ load<u32>((a >>> 6) & 0x3fc, CRC32_TABLE + (14 << 10))
    ^ load<u32>((a >>> 14) & 0x3fc, CRC32_TABLE + (13 << 10)) ^ load<u32>((a >>> 22) & 0x3fc, CRC32_TABLE + (12 << 10))
    ^ load<u32>((b << 2) & 0x3fc, CRC32_TABLE + (11 << 10)) ^ load<u32>((b >>> 6) & 0x3fc, CRC32_TABLE + (10 << 10))
    ^ load<u32>((b >>> 14) & 0x3fc, CRC32_TABLE + (9 << 10)) ^ load<u32>((b >>> 22) & 0x3fc, CRC32_TABLE + (8 << 10))
    ^ load<u32>((c << 2) & 0x3fc, CRC32_TABLE + (7 << 10)) ^ load<u32>((c >>> 6) & 0x3fc, CRC32_TABLE + (6 << 10))
    ^ load<u32>((c >>> 14) & 0x3fc, CRC32_TABLE + (5 << 10)) ^ load<u32>((c >>> 22) & 0x3fc, CRC32_TABLE + (4 << 10))
    ^ load<u32>((d << 2) & 0x3fc, CRC32_TABLE + (3 << 10)) ^ load<u32>((d >>> 6) & 0x3fc, CRC32_TABLE + (2 << 10))
    ^ load<u32>((d >>> 14) & 0x3fc, CRC32_TABLE + (1 << 10)) ^ load<u32>((d >>> 22) & 0x3fc, CRC32_TABLE);
}

/** CRC-32 register after 8 bytes given as two little-endian words. */
@inline export function crc32Words8(crc: u32, a: u32, b: u32): u32 {
  a ^= crc;
  return load<u32>((a << 2) & 0x3fc, CRC32_TABLE + (7 << 10)) ^ load<u32>((a >>> 6) & 0x3fc, CRC32_TABLE + (6 << 10))
    ^ load<u32>((a >>> 14) & 0x3fc, CRC32_TABLE + (5 << 10)) ^ load<u32>((a >>> 22) & 0x3fc, CRC32_TABLE + (4 << 10))
    ^ load<u32>((b << 2) & 0x3fc, CRC32_TABLE + (3 << 10)) ^ load<u32>((b >>> 6) & 0x3fc, CRC32_TABLE + (2 << 10))
    ^ load<u32>((b >>> 14) & 0x3fc, CRC32_TABLE + (1 << 10)) ^ load<u32>((b >>> 22) & 0x3fc, CRC32_TABLE);
}

/** CRC-32 register update: continue `crc` (a raw register, not inverted) over [p, p+n). */
export function crc32Update(crc: u32, p: u32, n: u32): u32 {
  if (n >= SIMD_MIN) return crc32Simd(CRC32_TABLE, crc, p, n);
  return sliceRefl(CRC32_TABLE, crc, p, n);
}

/** CRC-32C register update (raw register). */
export function crc32cUpdate(crc: u32, p: u32, n: u32): u32 {
  if (n >= SIMD_MIN) return crc32Simd(CRC32C_TABLE, crc, p, n);
  return sliceRefl(CRC32C_TABLE, crc, p, n);
}

/** CRC-32 (zlib / Ethernet) of [p, p+n). */
export function crc32(p: u32, n: u32): u32 { return ~crc32Update(0xffffffff, p, n); }

/** CRC-32C (Castagnoli) of [p, p+n). */
export function crc32c(p: u32, n: u32): u32 { return ~crc32cUpdate(0xffffffff, p, n); }

/** The same CRC-32 with the scalar slicing-by-16 kernel only (benchmarks, tests). */
export function crc32Scalar(p: u32, n: u32): u32 { return ~sliceRefl(CRC32_TABLE, 0xffffffff, p, n); }

/** CRC-16 T10-DIF register update over [p, p+n), slicing-by-16 (init 0 for a fresh guard). */
export function crc16T10DifUpdate(crc: u32, p: u32, n: u32): u32 {
  const end16 = p + (n & ~15);
  while (p < end16) {
    const a = load<u32>(p);
    const b = load<u32>(p, 4);
    const c = load<u32>(p, 8);
    const d = load<u32>(p, 12);
    // Bytes in stream order are the little-endian bytes of a, b, c, d; the register meets the first two.
    const x0 = (a & 0xff) ^ (crc >> 8);
    const x1 = ((a >> 8) & 0xff) ^ (crc & 0xff);
    crc = load<u32>((x0 << 2), CRC16_TABLE + (15 << 10)) ^ load<u32>((x1 << 2), CRC16_TABLE + (14 << 10))
      ^ load<u32>(((a >>> 14) & 0x3fc), CRC16_TABLE + (13 << 10)) ^ load<u32>(((a >>> 22) & 0x3fc), CRC16_TABLE + (12 << 10))
      ^ load<u32>(((b << 2) & 0x3fc), CRC16_TABLE + (11 << 10)) ^ load<u32>(((b >>> 6) & 0x3fc), CRC16_TABLE + (10 << 10))
      ^ load<u32>(((b >>> 14) & 0x3fc), CRC16_TABLE + (9 << 10)) ^ load<u32>(((b >>> 22) & 0x3fc), CRC16_TABLE + (8 << 10))
      ^ load<u32>(((c << 2) & 0x3fc), CRC16_TABLE + (7 << 10)) ^ load<u32>(((c >>> 6) & 0x3fc), CRC16_TABLE + (6 << 10))
      ^ load<u32>(((c >>> 14) & 0x3fc), CRC16_TABLE + (5 << 10)) ^ load<u32>(((c >>> 22) & 0x3fc), CRC16_TABLE + (4 << 10))
      ^ load<u32>(((d << 2) & 0x3fc), CRC16_TABLE + (3 << 10)) ^ load<u32>(((d >>> 6) & 0x3fc), CRC16_TABLE + (2 << 10))
      ^ load<u32>(((d >>> 14) & 0x3fc), CRC16_TABLE + (1 << 10)) ^ load<u32>(((d >>> 22) & 0x3fc), CRC16_TABLE);
    p += 16;
  }
  const end = p + (n & 15);
  while (p < end) {
    crc = ((crc << 8) & 0xffff) ^ load<u32>(((((crc >> 8) ^ <u32>load<u8>(p)) & 0xff) << 2), CRC16_TABLE);
    p++;
  }
  return crc;
}

/** CRC-16 T10-DIF guard of [p, p+n). */
export function crc16T10Dif(p: u32, n: u32): u32 { return crc16T10DifUpdate(0, p, n); }

// ---- 16-stream SIMD kernel ----
//
// A block of 16 chunks of `chunk` bytes is cut into 16 contiguous pieces; lane i of the vectors runs
// the byte-at-a-time CRC of chunk i, each register kept as four byte planes (plane j holds byte j
// of every lane's register). One byte step is two 16-entry nibble lookups (i8x16.swizzle) per
// plane. The 16 lane registers are then joined with the zero-shift operator: appending m zero
// bytes to a message is linear in its register, tabulated per register nibble for m = 64 << k.
// Buffers go through 4 KiB blocks (256-byte chunks: a 4 KiB-payload frame is one block plus a
// few header bytes), then 1 KiB blocks (64-byte chunks: frames at a 1 or 2 KiB path MTU), then
// slicing-by-16 for the rest. Layout of CRC_AUX per polynomial (0x1000 apart):
//   +0     nibble tables: for plane j, lo[j] (16 B) then hi[j] (16 B) = 128 B
//   +0x80 + 0x200 k: shift by 64 << k zero bytes, k = 0..6: 8 tables (one per register nibble)
//          x 16 u32 = 512 B each
// (CRC_AUX + 0x1f00: 64 bytes where the lane registers are spilled for the join.)
const SIMD_MIN: u32 = 1024; // the smallest block
const AUX_NIB: u32 = 0;
// Shift tables for 64 << k zero bytes, k = 0..6 (64 B .. 4 KiB), 0x200 bytes apart.
const AUX_SHIFT: u32 = 0x80;
const AUX_SHIFT_STRIDE: u32 = 0x200;
const AUX_SHIFTS: u32 = 7;

@inline function auxFor(tbl: u32): u32 { return CRC_AUX + (tbl == CRC32_TABLE ? 0 : 0x1000); }

/** Register after m zero bytes, computed byte by byte (table construction only). */
function shiftSlow(tbl: u32, crc: u32, m: u32): u32 {
  for (let i: u32 = 0; i < m; i++) crc = (crc >>> 8) ^ load<u32>(tbl + ((crc & 0xff) << 2));
  return crc;
}

function buildAux(tbl: u32): void {
  const aux = auxFor(tbl);
  for (let j: u32 = 0; j < 4; j++) {
    for (let v: u32 = 0; v < 16; v++) {
      // One byte step with index x: reg' = (reg >> 8) ^ T[x]; T[x] = T[x & 15] ^ T[x & 0xf0].
      store<u8>(aux + AUX_NIB + j * 32 + v, <u8>(load<u32>(tbl + (v << 2)) >> (j * 8)));
      store<u8>(aux + AUX_NIB + j * 32 + 16 + v, <u8>(load<u32>(tbl + ((v << 4) << 2)) >> (j * 8)));
    }
  }
  for (let k: u32 = 0; k < AUX_SHIFTS; k++) {
    const m: u32 = 64 << k;
    const at = aux + AUX_SHIFT + k * AUX_SHIFT_STRIDE;
    for (let nib: u32 = 0; nib < 8; nib++) {
      for (let v: u32 = 0; v < 16; v++) store<u32>(at + nib * 64 + (v << 2), shiftSlow(tbl, v << (nib * 4), m));
    }
  }
}

/** Register after the zero bytes the shift table at `at` stands for. */
@inline function shiftBy(at: u32, crc: u32): u32 {
  return load<u32>(at + ((crc << 2) & 0x3c)) ^ load<u32>(at + ((crc >>> 2) & 0x3c), 64)
    ^ load<u32>(at + ((crc >>> 6) & 0x3c), 128) ^ load<u32>(at + ((crc >>> 10) & 0x3c), 192)
    ^ load<u32>(at + ((crc >>> 14) & 0x3c), 256) ^ load<u32>(at + ((crc >>> 18) & 0x3c), 320)
    ^ load<u32>(at + ((crc >>> 22) & 0x3c), 384) ^ load<u32>(at + ((crc >>> 26) & 0x3c), 448);
}

/** `blocks` blocks of 16 chunks of `chunk` bytes (chunk a power of two, 64..256), continuing `crc`. */
@inline function simdBlocks(aux: u32, crc: u32, p: u32, blocks: u32, chunk: u32): u32 {
  const kb = chunk == 64 ? 0 : chunk == 128 ? 1 : 2; // shift table of one chunk
  const lo0 = v128.load(aux), hi0 = v128.load(aux, 16);
  const lo1 = v128.load(aux, 32), hi1 = v128.load(aux, 48);
  const lo2 = v128.load(aux, 64), hi2 = v128.load(aux, 80);
  const lo3 = v128.load(aux, 96), hi3 = v128.load(aux, 112);
  const m4 = i8x16.splat(0x0f);
  const shBlock = aux + AUX_SHIFT + (kb + 4) * AUX_SHIFT_STRIDE;
  for (let blk: u32 = 0; blk < blocks; blk++) {
    let b0 = i8x16.splat(0), b1 = i8x16.splat(0), b2 = i8x16.splat(0), b3 = i8x16.splat(0);
    let x = b0, l = b0, h = b0;
    for (let k: u32 = 0; k < chunk; k += 16) {
      // Transpose 16 x 16 bytes: row i = chunk i's bytes k..k+15 -> column vectors.
      const q = p + k;
      const r0 = v128.load(q), r1 = v128.load(q + 1 * chunk), r2 = v128.load(q + 2 * chunk), r3 = v128.load(q + 3 * chunk);
      const r4 = v128.load(q + 4 * chunk), r5 = v128.load(q + 5 * chunk), r6 = v128.load(q + 6 * chunk), r7 = v128.load(q + 7 * chunk);
      const r8 = v128.load(q + 8 * chunk), r9 = v128.load(q + 9 * chunk), ra = v128.load(q + 10 * chunk), rb = v128.load(q + 11 * chunk);
      const rc = v128.load(q + 12 * chunk), rd = v128.load(q + 13 * chunk), re = v128.load(q + 14 * chunk), rf = v128.load(q + 15 * chunk);
      // Stage 1: interleave bytes.
      const s0 = i8x16.shuffle(r0, r1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const s1 = i8x16.shuffle(r0, r1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const s2 = i8x16.shuffle(r2, r3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const s3 = i8x16.shuffle(r2, r3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const s4 = i8x16.shuffle(r4, r5, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const s5 = i8x16.shuffle(r4, r5, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const s6 = i8x16.shuffle(r6, r7, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const s7 = i8x16.shuffle(r6, r7, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const s8 = i8x16.shuffle(r8, r9, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const s9 = i8x16.shuffle(r8, r9, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const sa = i8x16.shuffle(ra, rb, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const sb = i8x16.shuffle(ra, rb, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const sc = i8x16.shuffle(rc, rd, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const sd = i8x16.shuffle(rc, rd, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const se = i8x16.shuffle(re, rf, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const sf = i8x16.shuffle(re, rf, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      // Stage 2: interleave 16-bit pairs.
      const t0 = i16x8.shuffle(s0, s2, 0, 8, 1, 9, 2, 10, 3, 11);
      const t1 = i16x8.shuffle(s0, s2, 4, 12, 5, 13, 6, 14, 7, 15);
      const t2 = i16x8.shuffle(s1, s3, 0, 8, 1, 9, 2, 10, 3, 11);
      const t3 = i16x8.shuffle(s1, s3, 4, 12, 5, 13, 6, 14, 7, 15);
      const t4 = i16x8.shuffle(s4, s6, 0, 8, 1, 9, 2, 10, 3, 11);
      const t5 = i16x8.shuffle(s4, s6, 4, 12, 5, 13, 6, 14, 7, 15);
      const t6 = i16x8.shuffle(s5, s7, 0, 8, 1, 9, 2, 10, 3, 11);
      const t7 = i16x8.shuffle(s5, s7, 4, 12, 5, 13, 6, 14, 7, 15);
      const t8 = i16x8.shuffle(s8, sa, 0, 8, 1, 9, 2, 10, 3, 11);
      const t9 = i16x8.shuffle(s8, sa, 4, 12, 5, 13, 6, 14, 7, 15);
      const ta = i16x8.shuffle(s9, sb, 0, 8, 1, 9, 2, 10, 3, 11);
      const tb = i16x8.shuffle(s9, sb, 4, 12, 5, 13, 6, 14, 7, 15);
      const tc = i16x8.shuffle(sc, se, 0, 8, 1, 9, 2, 10, 3, 11);
      const td = i16x8.shuffle(sc, se, 4, 12, 5, 13, 6, 14, 7, 15);
      const te = i16x8.shuffle(sd, sf, 0, 8, 1, 9, 2, 10, 3, 11);
      const tf = i16x8.shuffle(sd, sf, 4, 12, 5, 13, 6, 14, 7, 15);
      // Stage 3: interleave 32-bit quads.
      const u0 = i32x4.shuffle(t0, t4, 0, 4, 1, 5);
      const u1 = i32x4.shuffle(t0, t4, 2, 6, 3, 7);
      const u2 = i32x4.shuffle(t1, t5, 0, 4, 1, 5);
      const u3 = i32x4.shuffle(t1, t5, 2, 6, 3, 7);
      const u4 = i32x4.shuffle(t2, t6, 0, 4, 1, 5);
      const u5 = i32x4.shuffle(t2, t6, 2, 6, 3, 7);
      const u6 = i32x4.shuffle(t3, t7, 0, 4, 1, 5);
      const u7 = i32x4.shuffle(t3, t7, 2, 6, 3, 7);
      const u8_ = i32x4.shuffle(t8, tc, 0, 4, 1, 5);
      const u9 = i32x4.shuffle(t8, tc, 2, 6, 3, 7);
      const ua = i32x4.shuffle(t9, td, 0, 4, 1, 5);
      const ub = i32x4.shuffle(t9, td, 2, 6, 3, 7);
      const uc = i32x4.shuffle(ta, te, 0, 4, 1, 5);
      const ud = i32x4.shuffle(ta, te, 2, 6, 3, 7);
      const ue = i32x4.shuffle(tb, tf, 0, 4, 1, 5);
      const uf = i32x4.shuffle(tb, tf, 2, 6, 3, 7);
      // Stage 4: 64-bit halves give the columns in byte order 0..15; one byte step per column.
      x = v128.xor(b0, i64x2.shuffle(u0, u8_, 0, 2)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u0, u8_, 1, 3)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u1, u9, 0, 2)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u1, u9, 1, 3)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u2, ua, 0, 2)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u2, ua, 1, 3)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u3, ub, 0, 2)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u3, ub, 1, 3)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u4, uc, 0, 2)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u4, uc, 1, 3)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u5, ud, 0, 2)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u5, ud, 1, 3)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u6, ue, 0, 2)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u6, ue, 1, 3)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u7, uf, 0, 2)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
      x = v128.xor(b0, i64x2.shuffle(u7, uf, 1, 3)); l = v128.and(x, m4); h = i8x16.shr_u(x, 4);
      b0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, l), i8x16.swizzle(hi0, h)));
      b1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, l), i8x16.swizzle(hi1, h)));
      b2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, l), i8x16.swizzle(hi2, h)));
      b3 = v128.xor(i8x16.swizzle(lo3, l), i8x16.swizzle(hi3, h));
    }
    // Join: gather each lane's register from the four byte planes (lane i = u32 i at LANE_TMP),
    // fold neighbours pairwise (chunk i is 15 - i chunks from the block's end), then the running one.
    const p01lo = i8x16.shuffle(b0, b1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const p01hi = i8x16.shuffle(b0, b1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const p23lo = i8x16.shuffle(b2, b3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const p23hi = i8x16.shuffle(b2, b3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    v128.store(LANE_TMP, i16x8.shuffle(p01lo, p23lo, 0, 8, 1, 9, 2, 10, 3, 11));
    v128.store(LANE_TMP, i16x8.shuffle(p01lo, p23lo, 4, 12, 5, 13, 6, 14, 7, 15), 16);
    v128.store(LANE_TMP, i16x8.shuffle(p01hi, p23hi, 0, 8, 1, 9, 2, 10, 3, 11), 32);
    v128.store(LANE_TMP, i16x8.shuffle(p01hi, p23hi, 4, 12, 5, 13, 6, 14, 7, 15), 48);
    for (let k: u32 = 0; k < 4; k++) {
      const sh = aux + AUX_SHIFT + (kb + k) * AUX_SHIFT_STRIDE, step: u32 = 1 << k;
      for (let i: u32 = 0; i < 16; i += step << 1) {
        const at = LANE_TMP + (i << 2);
        store<u32>(at, shiftBy(sh, load<u32>(at)) ^ load<u32>(at + (step << 2)));
      }
    }
    const lanes = load<u32>(LANE_TMP);
    crc = shiftBy(shBlock, crc) ^ lanes;
    p += chunk << 4;
  }
  return crc;
}

/** 4 KiB blocks (256-byte chunks), then 1 KiB blocks (64-byte chunks), then slicing-by-16. */
function crc32Simd(tbl: u32, crc: u32, p: u32, n: u32): u32 {
  const aux = auxFor(tbl);
  const big = n >> 12;
  if (big) { crc = simdBlocks(aux, crc, p, big, 256); p += big << 12; n -= big << 12; }
  const small = n >> 10;
  if (small) { crc = simdBlocks(aux, crc, p, small, 64); p += small << 10; n -= small << 10; }
  return sliceRefl(tbl, crc, p, n);
}

const LANE_TMP: u32 = CRC_AUX + 0x1f00;

// ---- start-up ----
buildReflected(CRC32_TABLE, CRC32_POLY_REFLECTED);
buildReflected(CRC32C_TABLE, CRC32C_POLY_REFLECTED);
buildCrc16(CRC16_TABLE);
buildAux(CRC32_TABLE);
buildAux(CRC32C_TABLE);
