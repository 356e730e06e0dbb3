// Receive path: parse + type + ICRC check of 64-byte-payload SEND ONLY frames out of the RX
// ring (firmware rdmaRxPoll, result log on), beside a plain-TypeScript parser doing the same
// checks over the same ring through a DataView.
import * as M from "../../assembly/memmap.js";
import * as W from "../../assembly/rdma/wire.js";
import { compare, type BenchOptions, type Figure } from "./harness.js";
import { frameCard, crc32Ts } from "./crc.js";

const BATCH = M.NET_RING_ENTRIES;

/** The same checks as assembly/rdma/rx.ts in plain TypeScript; returns frames accepted. */
export function rxParseTs(u8: Uint8Array, dv: DataView, first: number, n: number, opLen: Uint8Array): number {
  let ok = 0;
  const mask = new Uint8Array(40);
  for (let k = 0; k < n; k++) {
    const s = M.NET_RX_SLOTS + ((first + k) % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
    const len = dv.getUint32(s, true);
    const f = s + M.NET_SLOT_HDR;
    if (len > M.NET_FRAME_MAX || len < 58 || dv.getUint16(f + 12) !== 0x0800) continue;
    const ip = f + 14;
    if (u8[ip] !== 0x45) continue;
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += dv.getUint16(ip + i);
    sum = (sum & 0xffff) + (sum >>> 16); sum = (sum & 0xffff) + (sum >>> 16);
    if (sum !== 0xffff) continue;
    const ipLen = dv.getUint16(ip + 2);
    if (ipLen < 44 || ipLen > len - 14 || (dv.getUint16(ip + 6) & 0x3fff) !== 0 || u8[ip + 9] !== 17) continue;
    if (dv.getUint16(ip + 22) !== 4791 || dv.getUint16(ip + 24) !== ipLen - 20) continue;
    mask.set(u8.subarray(ip, ip + 40));
    mask[1] = 0xff; mask[8] = 0xff; mask[10] = 0xff; mask[11] = 0xff; mask[26] = 0xff; mask[27] = 0xff; mask[32] = 0xff;
    let c = crc32Ts(PSEUDO, 0, 8);
    c = crc32Ts(mask, 0, 40, c);
    c = ~crc32Ts(u8, ip + 40, ip + ipLen - 4, c) >>> 0;
    if (c !== dv.getUint32(ip + ipLen - 4, true)) continue;
    const b = ip + 28;
    const op = u8[b]!, flags = u8[b + 1]!;
    const hl = opLen[op]!;
    if ((flags & 15) !== 0 || hl === 0) continue;
    const room = ipLen - 32 - hl, pad = (flags >> 4) & 3;
    if (room < 0 || (room & 3) !== 0 || room < pad) continue;
    ok++;
  }
  return ok;
}
const PSEUDO = new Uint8Array(8).fill(0xff);

export async function benchRx(o: BenchOptions): Promise<Figure> {
  const { card, frame, len } = await frameCard(64);
  const dv = card.dv, u8 = card.u8;
  // Every RX slot holds the frame; each call re-arms the ring with a full batch.
  for (let i = 0; i < M.NET_RING_ENTRIES; i++) {
    const s = M.NET_RX_SLOTS + i * M.NET_SLOT_SIZE;
    dv.setUint32(s, len, true);
    u8.copyWithin(s + M.NET_SLOT_HDR, frame, frame + len);
  }
  const opLen = new Uint8Array(256);
  for (let op = 0; op < 256; op++) {
    const e = card.fw.rdmaOpcodeEntry(op);
    if (dv.getUint8(e + W.OPT_VALID)) opLen[op] = dv.getUint8(e + W.OPT_HDRLEN);
  }
  const arm = () => { const c = dv.getUint32(M.NET_RX_CTRL + 4, true); dv.setUint32(M.NET_RX_CTRL, (c + BATCH) >>> 0, true); return c; };
  if (rxParseTs(u8, dv, 0, BATCH, opLen) !== BATCH) throw new Error("bench: the TypeScript parser rejected the frames");
  return compare(
    "receive path: parse + type + ICRC check, 64-byte-payload SEND ONLY frames", "frames/s",
    () => { arm(); const n = card.fw.rdmaRxPoll(BATCH); dv.setUint32(M.RDMA_CTRL + W.RC_LOG_CONS, dv.getUint32(M.RDMA_CTRL + W.RC_LOG_PROD, true), true); return n; },
    "the same checks in plain TypeScript over the same ring",
    () => { const c = arm(); const n = rxParseTs(u8, dv, c, BATCH, opLen); dv.setUint32(M.NET_RX_CTRL + 4, (c + BATCH) >>> 0, true); return n; },
    o,
  );
}
