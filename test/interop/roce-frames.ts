// RoCEv2 frames built in TypeScript for the interop suite, independent of the firmware's
// builder: Ethernet II / IPv4 / UDP 4791 / BTH / extension headers / payload / pad / ICRC,
// the ICRC computed with Node's zlib.crc32 over the masked fields (IBTA vol. 1 §7.8.1,
// Annex A17.3.3; see REFERENCE.md). A second opinion on the wire format, so that
// Wireshark is checked against bytes that do not come from the code under test.
import { crc32 } from "node:zlib";

/** Extension headers in the order they follow the BTH (§9.2, table 38). */
export interface RoceSpec {
  opcode: number;
  destQp: number;
  psn: number;
  ackReq?: boolean;
  payload?: Uint8Array;
  reth?: { va: bigint; rkey: number; len: number };
  aeth?: { syndrome: number; msn: number };
  imm?: number;
  ieth?: number;
  deth?: { qkey: number; srcQp: number };
  srcIp?: string;
  dstIp?: string;
  srcPort?: number;
}

const ip4 = (s: string) => s.split(".").map(Number);

export function roceFrame(s: RoceSpec): Uint8Array {
  const payload = s.payload ?? new Uint8Array(0);
  const pad = (4 - (payload.length % 4)) % 4;
  const ext = (s.deth ? 8 : 0) + (s.reth ? 16 : 0) + (s.aeth ? 4 : 0) + (s.imm !== undefined ? 4 : 0) + (s.ieth !== undefined ? 4 : 0);
  const ibLen = 12 + ext + payload.length + pad + 4; // BTH .. ICRC
  const udpLen = 8 + ibLen;
  const ipLen = 20 + udpLen;
  const f = new Uint8Array(14 + ipLen);
  const dv = new DataView(f.buffer);
  // Ethernet II: locally administered unicast MACs.
  f.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01], 0);
  dv.setUint16(12, 0x0800);
  // IPv4 (RFC 791): DF set, TTL 64, protocol UDP, header checksum.
  const ip = 14;
  f[ip] = 0x45;
  f[ip + 1] = 0; // DSCP/ECN
  dv.setUint16(ip + 2, ipLen);
  dv.setUint16(ip + 4, 0);
  dv.setUint16(ip + 6, 0x4000);
  f[ip + 8] = 64;
  f[ip + 9] = 17;
  f.set(ip4(s.srcIp ?? "10.0.0.1"), ip + 12);
  f.set(ip4(s.dstIp ?? "10.0.0.2"), ip + 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += dv.getUint16(ip + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  dv.setUint16(ip + 10, ~sum & 0xffff);
  // UDP (RFC 768), destination 4791 (Annex A17.4.1), checksum 0.
  const udp = ip + 20;
  dv.setUint16(udp, s.srcPort ?? 0xc000);
  dv.setUint16(udp + 2, 4791);
  dv.setUint16(udp + 4, udpLen);
  // BTH (§9.2).
  const bth = udp + 8;
  f[bth] = s.opcode;
  f[bth + 1] = pad << 4; // SE 0, M 0, PadCnt, TVer 0
  dv.setUint16(bth + 2, 0xffff); // default P_Key
  dv.setUint32(bth + 4, s.destQp & 0xffffff);
  dv.setUint32(bth + 8, ((s.ackReq ? 0x80000000 : 0) | (s.psn & 0xffffff)) >>> 0);
  let at = bth + 12;
  if (s.deth) { dv.setUint32(at, s.deth.qkey); dv.setUint32(at + 4, s.deth.srcQp & 0xffffff); at += 8; }
  if (s.reth) { dv.setBigUint64(at, s.reth.va); dv.setUint32(at + 8, s.reth.rkey); dv.setUint32(at + 12, s.reth.len); at += 16; }
  if (s.aeth) { dv.setUint32(at, ((s.aeth.syndrome << 24) | (s.aeth.msn & 0xffffff)) >>> 0); at += 4; }
  if (s.imm !== undefined) { dv.setUint32(at, s.imm); at += 4; }
  if (s.ieth !== undefined) { dv.setUint32(at, s.ieth); at += 4; }
  f.set(payload, at);
  at += payload.length + pad;
  dv.setUint32(at, icrc(f), true); // least-significant byte first
  return f;
}

/** The ICRC of a RoCEv2 IPv4 frame (its last 4 bytes excluded). */
export function icrc(frame: Uint8Array): number {
  const ip = 14;
  const m = new Uint8Array(8 + frame.length - 14 - 4);
  m.fill(0xff, 0, 8); // in place of the LRH
  m.set(frame.subarray(ip, frame.length - 4), 8);
  const o = 8;
  m[o + 1] = 0xff; // TOS
  m[o + 8] = 0xff; // TTL
  m[o + 10] = 0xff; m[o + 11] = 0xff; // IP header checksum
  m[o + 20 + 6] = 0xff; m[o + 20 + 7] = 0xff; // UDP checksum
  m[o + 28 + 4] = 0xff; // BTH reserved byte (FECN/BECN)
  return crc32(m);
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** One frame of every kind the RoCEv2 engine sends or receives, with what was built. */
export function representativeFrames(): RoceSpec[] {
  const reth = { va: 0x10000n, rkey: 0x1234, len: 600 };
  const ack = { syndrome: 0x1f, msn: 3 };
  return [
    { opcode: 0x04, destQp: 0x11, psn: 100, ackReq: true, payload: bytes(64, 1) }, // RC SEND ONLY
    { opcode: 0x00, destQp: 0x11, psn: 101, payload: bytes(256, 2) }, // SEND FIRST
    { opcode: 0x01, destQp: 0x11, psn: 102, payload: bytes(256, 3) }, // SEND MIDDLE
    { opcode: 0x02, destQp: 0x11, psn: 103, ackReq: true, payload: bytes(88, 4) }, // SEND LAST
    { opcode: 0x05, destQp: 0x11, psn: 104, payload: bytes(16, 5), imm: 0xdeadbeef }, // SEND ONLY with immediate
    { opcode: 0x17, destQp: 0x11, psn: 105, payload: bytes(64, 6), ieth: 0x4321 }, // SEND ONLY with invalidate (64 bytes: Wireshark 4.0 takes shorter ones for RPC-over-RDMA)
    { opcode: 0x06, destQp: 0x12, psn: 0xfffffe, reth, payload: bytes(256, 7) }, // RDMA WRITE FIRST
    { opcode: 0x07, destQp: 0x12, psn: 0xffffff, payload: bytes(256, 8) }, // WRITE MIDDLE
    { opcode: 0x08, destQp: 0x12, psn: 0, ackReq: true, payload: bytes(88, 9) }, // WRITE LAST (PSN wrapped)
    { opcode: 0x0a, destQp: 0x12, psn: 1, reth: { ...reth, len: 13 }, payload: bytes(13, 10) }, // WRITE ONLY, 3 pad bytes
    { opcode: 0x0b, destQp: 0x12, psn: 2, reth: { ...reth, len: 4 }, imm: 7, payload: bytes(4, 11) }, // WRITE ONLY with immediate
    { opcode: 0x0c, destQp: 0x13, psn: 50, ackReq: true, reth: { ...reth, len: 4096 } }, // RDMA READ REQUEST
    { opcode: 0x0d, destQp: 0x14, psn: 50, aeth: ack, payload: bytes(1024, 12) }, // READ RESPONSE FIRST
    { opcode: 0x0e, destQp: 0x14, psn: 51, payload: bytes(1024, 13) }, // READ RESPONSE MIDDLE
    { opcode: 0x0f, destQp: 0x14, psn: 52, aeth: ack, payload: bytes(1022, 14) }, // READ RESPONSE LAST, 2 pad bytes
    { opcode: 0x10, destQp: 0x14, psn: 53, aeth: ack, payload: bytes(512, 15) }, // READ RESPONSE ONLY
    { opcode: 0x11, destQp: 0x11, psn: 105, aeth: ack }, // ACKNOWLEDGE
    { opcode: 0x11, destQp: 0x11, psn: 106, aeth: { syndrome: 0x60, msn: 5 } }, // NAK: PSN sequence error
    { opcode: 0x11, destQp: 0x11, psn: 106, aeth: { syndrome: 0x62, msn: 5 } }, // NAK: remote access error
    { opcode: 0x11, destQp: 0x11, psn: 106, aeth: { syndrome: 0x2e, msn: 5 } }, // RNR NAK
    { opcode: 0x64, destQp: 0x20, psn: 7, deth: { qkey: 0x11111111, srcQp: 0x21 }, payload: bytes(256, 16) }, // UD SEND ONLY
  ];
}
