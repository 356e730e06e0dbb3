// CRC figures: the firmware's ICRC (CRC-32 over a masked RoCEv2 frame, 16-stream SIMD kernel
// for the bulk) beside Node's native zlib.crc32 and a plain-TypeScript CRC-32 over the same
// bytes, on frames with a 4 KiB payload and with a 64-byte payload.
import { crc32 as zlibCrc32 } from "node:zlib";
import { Card } from "../card.js";
import * as M from "../../assembly/memmap.js";
import * as W from "../../assembly/rdma/wire.js";
import { compare, type BenchOptions, type Figure } from "./harness.js";

/** Plain-TypeScript CRC-32 (zlib's), slicing-by-8 over Int32Array tables: the reference. */
const T = (() => {
  const t = new Int32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    t[b] = c;
  }
  for (let k = 1; k < 8; k++) for (let b = 0; b < 256; b++) { const p = t[(k - 1) * 256 + b]!; t[k * 256 + b] = (p >>> 8) ^ t[p & 0xff]!; }
  return t;
})();

export function crc32Ts(u8: Uint8Array, start: number, end: number, crc = 0xffffffff): number {
  let c = crc | 0, i = start;
  const n8 = start + ((end - start) & ~7);
  for (; i < n8; i += 8) {
    const a = c ^ (u8[i]! | (u8[i + 1]! << 8) | (u8[i + 2]! << 16) | (u8[i + 3]! << 24));
    c = T[1792 + (a & 0xff)]! ^ T[1536 + ((a >>> 8) & 0xff)]! ^ T[1280 + ((a >>> 16) & 0xff)]! ^ T[1024 + (a >>> 24)]!
      ^ T[768 + u8[i + 4]!]! ^ T[512 + u8[i + 5]!]! ^ T[256 + u8[i + 6]!]! ^ T[u8[i + 7]!]!;
  }
  for (; i < end; i++) c = (c >>> 8) ^ T[(c ^ u8[i]!) & 0xff]!;
  return c;
}

/** A card with one SEND ONLY frame of `payload` bytes built by the firmware; returns it and its address. */
export async function frameCard(payload: number): Promise<{ card: Card; frame: number; len: number; ipLen: number }> {
  const card = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [] });
  const d = card.fw.rdmaTxDesc();
  const dv = card.dv, g = card.guests[0]!;
  card.u8.fill(0, d, d + W.TXD_SIZE);
  card.u8.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 10, 0, 0, 2], d);
  dv.setUint16(d + W.TXD_SPORT, 0xc001, true);
  dv.setUint8(d + W.TXD_TTL, 64);
  dv.setUint8(d + W.TXD_OPCODE, W.Op.RC_SEND_ONLY);
  dv.setUint16(d + W.TXD_PKEY, 0xffff, true);
  dv.setUint32(d + W.TXD_DQP, 0x12, true);
  for (let i = 0; i < payload; i++) card.u8[g.base + i] = (i * 131) & 0xff;
  dv.setUint32(d + W.TXD_PAYLOAD, g.base, true);
  dv.setUint32(d + W.TXD_LEN, payload, true);
  const len = card.fw.rdmaTxPacket(d);
  if (len >>> 0 === 0xffffffff) throw new Error("bench: the firmware refused the frame");
  const frame = M.NET_TX_SLOTS + M.NET_SLOT_HDR;
  return { card, frame, len, ipLen: dv.getUint16(frame + 14 + 2) }; // IPv4 total length (big-endian)
}

function icrcBench(payload: number, ref: "zlib" | "ts") {
  return async (o: BenchOptions): Promise<Figure> => {
    const { card, frame, ipLen } = await frameCard(payload);
    const bytes = ipLen - 4 + 8; // what the ICRC covers: pseudo LRH + IP..payload+pad
    const per = payload >= 1024 ? 256 : 8192;
    const view = card.u8.subarray(frame + 14, frame + 14 + ipLen - 4);
    const label = payload >= 1024 ? "4 KiB" : `${payload}-byte`;
    return compare(
      `ICRC, ${label}-payload RoCEv2 frames (firmware, masked headers + SIMD CRC-32)`, "GB/s",
      () => { card.fw.benchIcrc(frame, ipLen, per); return per * bytes; },
      ref === "zlib" ? "node:zlib crc32 over the same bytes, one call per frame" : "plain-TypeScript CRC-32 (slicing-by-8) over the same bytes",
      ref === "zlib"
        ? () => { let x = 0; for (let i = 0; i < per; i++) x ^= zlibCrc32(view); return per * bytes + (x & 0); }
        : () => { let x = 0; for (let i = 0; i < per; i++) x ^= crc32Ts(view, 0, view.length); return per * bytes + (x & 0); },
      o, 1e-9,
    );
  };
}

export const benchIcrc4kZlib = icrcBench(4096, "zlib");
export const benchIcrc4kTs = icrcBench(4096, "ts");
export const benchIcrc64Zlib = icrcBench(64, "zlib");
