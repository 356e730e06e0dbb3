// Transmit path: one RoCEv2 packet built from a descriptor into the TX frame ring (Ethernet,
// IPv4 with checksum, UDP, BTH, payload, pad, ICRC), for 64-byte SEND ONLY packets, beside the
// same frame built in plain TypeScript through a DataView into the same ring.
import * as M from "../../assembly/memmap.js";
import * as W from "../../assembly/rdma/wire.js";
import { compare, type BenchOptions, type Figure } from "./harness.js";
import { frameCard, crc32Ts } from "./crc.js";

const PER = 4096;
const PSEUDO = new Uint8Array(8).fill(0xff);

/** The same frame as rdmaTxPacket for a SEND ONLY, in plain TypeScript; returns its length. */
function buildTs(u8: Uint8Array, dv: DataView, d: number, f: number, mask: Uint8Array): number {
  const len = dv.getUint32(d + W.TXD_LEN, true), pad = (4 - (len & 3)) & 3;
  const ipLen = 20 + 8 + 12 + len + pad + 4;
  u8.copyWithin(f, d + W.TXD_DST_MAC, d + W.TXD_DST_MAC + 12);
  dv.setUint16(f + 12, 0x0800);
  const ip = f + 14;
  dv.setUint32(ip, 0x45000000 | ipLen); dv.setUint32(ip + 4, 0x4000); dv.setUint32(ip + 8, (64 << 24) | (17 << 16));
  u8.copyWithin(ip + 12, d + W.TXD_SRC_IP, d + W.TXD_SRC_IP + 8);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += dv.getUint16(ip + i);
  s = (s & 0xffff) + (s >>> 16); s = (s & 0xffff) + (s >>> 16);
  dv.setUint16(ip + 10, ~s & 0xffff);
  dv.setUint16(ip + 20, dv.getUint16(d + W.TXD_SPORT, true)); dv.setUint16(ip + 22, 4791);
  dv.setUint16(ip + 24, ipLen - 20); dv.setUint16(ip + 26, 0);
  const b = ip + 28;
  dv.setUint8(b, W.Op.RC_SEND_ONLY); dv.setUint8(b + 1, pad << 4); dv.setUint16(b + 2, dv.getUint16(d + W.TXD_PKEY, true));
  dv.setUint32(b + 4, dv.getUint32(d + W.TXD_DQP, true) & 0xffffff);
  dv.setUint32(b + 8, dv.getUint32(d + W.TXD_PSN, true) & 0xffffff);
  const pl = dv.getUint32(d + W.TXD_PAYLOAD, true);
  u8.copyWithin(b + 12, pl, pl + len);
  u8.fill(0, b + 12 + len, b + 12 + len + pad);
  mask.set(u8.subarray(ip, ip + 40));
  mask[1] = 0xff; mask[8] = 0xff; mask[10] = 0xff; mask[11] = 0xff; mask[26] = 0xff; mask[27] = 0xff; mask[32] = 0xff;
  let c = crc32Ts(PSEUDO, 0, 8);
  c = crc32Ts(mask, 0, 40, c);
  c = ~crc32Ts(u8, ip + 40, ip + ipLen - 4, c);
  dv.setUint32(ip + ipLen - 4, c >>> 0, true);
  return 14 + ipLen;
}

export async function benchTx(o: BenchOptions): Promise<Figure> {
  const { card, frame, len } = await frameCard(64);
  const dv = card.dv, u8 = card.u8;
  const d = card.fw.rdmaTxDesc();
  // The reference must build the very bytes the firmware builds.
  const mask = new Uint8Array(40);
  const probe = M.NET_TX_SLOTS + M.NET_SLOT_SIZE + M.NET_SLOT_HDR;
  if (buildTs(u8, dv, d, probe, mask) !== len || !u8.subarray(probe, probe + len).every((x, i) => x === u8[frame + i])) {
    throw new Error("bench: the TypeScript builder does not build the firmware's frame");
  }
  let prod = 0;
  return compare(
    "transmit: build a 64-byte-payload SEND ONLY into the TX ring (headers, IPv4 checksum, ICRC)", "packets/s",
    () => card.fw.benchTxPackets(d, PER),
    "the same frames built in plain TypeScript",
    () => {
      for (let i = 0; i < PER; i++) {
        const s = M.NET_TX_SLOTS + (prod++ % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
        dv.setUint32(s, buildTs(u8, dv, d, s + M.NET_SLOT_HDR, mask), true);
      }
      return PER;
    },
    o,
  );
}
