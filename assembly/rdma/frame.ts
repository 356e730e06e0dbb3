// Whole RoCEv2 frames: Ethernet / IPv4 / UDP 4791 / BTH / extension headers / payload /
// pad to 4 / ICRC (IBTA vol. 1 §9.2-§9.5, Annex A17). Building from a transmit descriptor
// (wire.ts TXD_*) and the ICRC (A17.3.3: CRC-32 over the masked pseudo header and the rest).
import { RDMA_SCRATCH } from "../memmap";
import { crc32Update, crc32Words16, crc32Words8 } from "../crc";
import {
  ETH_HDR_LEN, ETH_MIN_FRAME, IP_HDR_LEN, IP_TOTLEN_OFF, IP_TOS_OFF, IP_TTL_OFF, IP_CSUM_OFF, UDP_HDR_LEN, UDP_CSUM_OFF,
  BTH_LEN, BTH_RESV8A_OFF, ICRC_LEN, OPT_HDRLEN, OPT_RETH, OPT_AETH, OPT_IMMDT, OPT_IETH, OPT_DETH, OPT_ATOMICETH,
  OPT_ATOMICACKETH, TXD_DST_MAC, TXD_SRC_IP, TXD_DST_IP, TXD_SPORT, TXD_TOS, TXD_TTL, TXD_BTH_FLAGS, TXD_PKEY, TXD_DQP,
  TXD_RETH_VA, TXD_RETH_RKEY, TXD_AETH, TXD_IMM, TXD_IETH_RKEY, TXD_DETH_QKEY, TXD_DETH_SRCQP, TXD_ATOMIC_SWAP,
  TXD_ATOMIC_CMP, TXD_ATOMIC_ORIG, OPT_CNP, CNP_RESERVED_LEN,
} from "./wire";
import { opEntry } from "./opcodes";
import { ethPut, ipPut, udpPut, bthPut, rethPut, dethPut, put32, put64, be16 } from "./headers";

/** Offset of the BTH from the start of the frame. */
export const BTH_AT: u32 = ETH_HDR_LEN + IP_HDR_LEN + UDP_HDR_LEN;
/** Bytes of a frame that are not BTH+extension headers, payload or pad. */
export const FRAME_OVERHEAD: u32 = BTH_AT + ICRC_LEN;

// CRC-32 register after the 8 bytes of 0xFF that stand in for the LRH (A17.3.3), from init ~0.
let icrcSeed: u32 = 0;
const MASKED_LEN: u32 = IP_HDR_LEN + UDP_HDR_LEN + BTH_LEN; // 40 bytes with masked fields
// The masks as they apply to little-endian words of the IPv4 header (words 0-4), the UDP header
// (5-6) and the BTH (7-9), derived from the field offsets.
const MASK_W0: u32 = 0xff << (IP_TOS_OFF * 8);
const MASK_W2: u32 = (0xff << ((IP_TTL_OFF - 8) * 8)) | (0xffff << ((IP_CSUM_OFF - 8) * 8));
const MASK_W6: u32 = 0xffff << ((IP_HDR_LEN + UDP_CSUM_OFF - 24) * 8);
const MASK_W8: u32 = 0xff << ((IP_HDR_LEN + UDP_HDR_LEN + BTH_RESV8A_OFF - 32) * 8);
const ICRC_TMP: u32 = RDMA_SCRATCH; // 64 bytes

function icrcInit(): void {
  store<u64>(ICRC_TMP, 0xffffffffffffffff);
  icrcSeed = crc32Update(0xffffffff, ICRC_TMP, 8);
}
icrcInit();

/**
 * ICRC of the frame at f whose IPv4 header says `ipLen` bytes (ICRC included): CRC-32 over
 * 8 x 0xFF, the IPv4 header with TOS, TTL and checksum all ones, the UDP header with its
 * checksum all ones, the BTH with byte 4 all ones, then the rest up to the ICRC.
 * ipLen must be at least MASKED_LEN + ICRC_LEN (the caller checked).
 */
export function icrcCompute(f: u32, ipLen: u32): u32 {
  const ip = f + ETH_HDR_LEN;
  // The 40 masked bytes as ten little-endian words, masks applied in registers:
  // word 0 byte 1 TOS; word 2 byte 0 TTL, bytes 2-3 IP checksum; word 6 bytes 2-3 UDP checksum;
  // word 8 byte 0 the BTH's reserved byte 4.
  let c = crc32Words16(icrcSeed, load<u32>(ip) | MASK_W0, load<u32>(ip, 4), load<u32>(ip, 8) | MASK_W2, load<u32>(ip, 12));
  c = crc32Words16(c, load<u32>(ip, 16), load<u32>(ip, 20), load<u32>(ip, 24) | MASK_W6, load<u32>(ip, 28));
  c = crc32Words8(c, load<u32>(ip, 32) | MASK_W8, load<u32>(ip, 36));
  c = crc32Update(c, ip + MASKED_LEN, ipLen - MASKED_LEN - ICRC_LEN);
  return ~c;
}

/**
 * Build one packet at frame address f from descriptor d: opcode `op` (its headers from the
 * opcode table), PSN, AckReq, `len` payload bytes from card offset `payload`; extension header
 * fields come from the descriptor. Returns the frame length (at least ETH_MIN_FRAME).
 */
export function buildPacket(d: u32, f: u32, op: u32, psn: u32, ackreq: bool, payload: u32, len: u32, dmaLen: u32): u32 {
  const e = opEntry(op);
  const hdrLen = <u32>load<u8>(e + OPT_HDRLEN);
  const pad = (4 - (len & 3)) & 3;
  const ipLen = IP_HDR_LEN + UDP_HDR_LEN + hdrLen + len + pad + ICRC_LEN;
  ethPut(f, d + TXD_DST_MAC);
  ipPut(f + ETH_HDR_LEN, <u32>load<u8>(d + TXD_TOS), ipLen, <u32>load<u8>(d + TXD_TTL), load<u32>(d + TXD_SRC_IP), load<u32>(d + TXD_DST_IP));
  udpPut(f + ETH_HDR_LEN + IP_HDR_LEN, <u32>load<u16>(d + TXD_SPORT), ipLen - IP_HDR_LEN);
  const b = f + BTH_AT;
  bthPut(b, op, <u32>load<u8>(d + TXD_BTH_FLAGS), pad, <u32>load<u16>(d + TXD_PKEY), load<u32>(d + TXD_DQP), ackreq, psn);
  let o = <u32>load<u8>(e + OPT_DETH);
  if (o) dethPut(b + o, load<u32>(d + TXD_DETH_QKEY), load<u32>(d + TXD_DETH_SRCQP));
  o = <u32>load<u8>(e + OPT_RETH);
  if (o) rethPut(b + o, load<u64>(d + TXD_RETH_VA), load<u32>(d + TXD_RETH_RKEY), dmaLen);
  o = <u32>load<u8>(e + OPT_ATOMICETH);
  if (o) {
    put64(b + o, load<u64>(d + TXD_RETH_VA));
    put32(b + o + 8, load<u32>(d + TXD_RETH_RKEY));
    put64(b + o + 12, load<u64>(d + TXD_ATOMIC_SWAP));
    put64(b + o + 20, load<u64>(d + TXD_ATOMIC_CMP));
  }
  o = <u32>load<u8>(e + OPT_AETH);
  if (o) put32(b + o, load<u32>(d + TXD_AETH));
  o = <u32>load<u8>(e + OPT_ATOMICACKETH);
  if (o) put64(b + o, load<u64>(d + TXD_ATOMIC_ORIG));
  o = <u32>load<u8>(e + OPT_IMMDT);
  if (o) put32(b + o, load<u32>(d + TXD_IMM));
  o = <u32>load<u8>(e + OPT_IETH);
  if (o) put32(b + o, load<u32>(d + TXD_IETH_RKEY));
  o = <u32>load<u8>(e + OPT_CNP);
  if (o) memory.fill(b + o, 0, CNP_RESERVED_LEN);
  const pl = b + hdrLen;
  if (len) memory.copy(pl, payload, len);
  store<u32>(pl + len, 0); // pad bytes (and harmless beyond: the ICRC overwrites them)
  store<u32>(pl + len + pad, icrcCompute(f, ipLen)); // least-significant byte first (A17.3.3)
  let flen = ETH_HDR_LEN + ipLen;
  if (flen < ETH_MIN_FRAME) { memory.fill(f + flen, 0, ETH_MIN_FRAME - flen); flen = ETH_MIN_FRAME; }
  return flen;
}

/** IPv4 total length field of the frame at f. */
@inline export function frameIpLen(f: u32): u32 { return be16(f + ETH_HDR_LEN + IP_TOTLEN_OFF); }
