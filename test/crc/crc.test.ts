import { describe, it, expect, beforeAll } from "vitest";
import { crc32 } from "node:zlib";
import { Card } from "../../host/card.js";

// Bit-at-a-time references straight from the polynomial definitions.
function crc32cRef(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1)); }
  return ~c >>> 0;
}
function crc16Ref(b: Uint8Array): number {
  let c = 0;
  for (const x of b) { c ^= x << 8; for (let k = 0; k < 8; k++) c = ((c << 1) ^ (c & 0x8000 ? 0x8bb7 : 0)) & 0xffff; }
  return c;
}

describe("CRC-32, CRC-32C and CRC-16 T10-DIF in firmware", () => {
  let c: Card;
  let at: number;
  const put = (b: Uint8Array) => { c.u8.set(b, at); return b.length; };
  beforeAll(async () => {
    c = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [] });
    at = c.guests[0]!.base + 3; // unaligned on purpose
  });

  it("gives the catalogue check values for \"123456789\"", () => {
    const n = put(new TextEncoder().encode("123456789"));
    expect(c.fw.crc32Of(at, n) >>> 0).toBe(0xcbf43926);
    expect(c.fw.crc32ScalarOf(at, n) >>> 0).toBe(0xcbf43926);
    expect(c.fw.crc32cOf(at, n) >>> 0).toBe(0xe3069283);
    expect(c.fw.crc16T10DifOf(at, n)).toBe(0xd0db);
  });

  it("puts aa 36 91 8a on the wire for the CRC-32C of 32 zero bytes (RFC 7143 B.4)", () => {
    const n = put(new Uint8Array(32));
    const v = c.fw.crc32cOf(at, n) >>> 0;
    expect([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]).toEqual([0xaa, 0x36, 0x91, 0x8a]);
  });

  it("matches zlib's CRC-32 and bitwise CRC-32C / T10-DIF at every length around the kernels' block edges", () => {
    const lens = [0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 100, 511, 512, 520, 1023, 1024, 1025,
      2047, 2048, 2049, 3071, 3072, 4095, 4096, 4097, 4150, 4096 + 1024 + 5, 8192 + 13, 65536, 65536 + 3072 + 7];
    let seed = 7;
    for (const n of lens) {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) { seed = (seed * 1103515245 + 12345) >>> 0; b[i] = seed >>> 24; }
      put(b);
      expect(c.fw.crc32Of(at, n) >>> 0, `crc32 n=${n}`).toBe(crc32(b) >>> 0);
      expect(c.fw.crc32ScalarOf(at, n) >>> 0, `crc32 scalar n=${n}`).toBe(crc32(b) >>> 0);
      expect(c.fw.crc32cOf(at, n) >>> 0, `crc32c n=${n}`).toBe(crc32cRef(b));
      expect(c.fw.crc16T10DifOf(at, n), `crc16 n=${n}`).toBe(crc16Ref(b));
    }
  });

  it("guards of many blocks in one call land big-endian at the PI stride, each the block's own T10-DIF CRC", () => {
    const bs = 512, n = 9, stride = 8;
    const b = new Uint8Array(bs * n).map((_, i) => (i * 31 + 7) & 0xff);
    put(b);
    const out = at + b.length + 64;
    c.u8.fill(0xee, out, out + n * stride);
    c.fw.crc16T10DifBlocks(at, bs, n, out, stride);
    for (let i = 0; i < n; i++) {
      expect((c.u8[out + i * stride]! << 8) | c.u8[out + i * stride + 1]!, `block ${i}`).toBe(crc16Ref(b.subarray(i * bs, (i + 1) * bs)));
      expect(c.u8[out + i * stride + 2]).toBe(0xee); // the rest of each PI entry is left alone
    }
  });
});
