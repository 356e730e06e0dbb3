// Big-endian field access and the per-header builders/parsers of a RoCEv2 frame
// (IBTA vol. 1 §9.2 BTH, §9.3 extension headers; RFC 791 IPv4; RFC 768 UDP). Offsets are the
// named constants of wire.ts; `p` is the card offset of the header.
import {
  ETH_DST_OFF, ETH_SRC_OFF, ETH_TYPE_OFF, ETHERTYPE_IPV4, IP_VER_IHL_OFF, IP_VER_IHL, IP_TOS_OFF, IP_TOTLEN_OFF,
  IP_ID_OFF, IP_FRAG_OFF, IP_DF, IP_TTL_OFF, IP_PROTO_OFF, IP_CSUM_OFF, IP_SRC_OFF, IP_DST_OFF, IPPROTO_UDP,
  UDP_SPORT_OFF, UDP_DPORT_OFF, UDP_LEN_OFF, UDP_CSUM_OFF, ROCEV2_UDP_PORT, BTH_OPCODE_OFF, BTH_FLAGS_OFF,
  BTH_PKEY_OFF, BTH_DQP_OFF, BTH_PSN_OFF, BTH_ACKREQ, BTH_PAD_SHIFT, PSN_MASK, QPN_MASK,
  RETH_VA_OFF, RETH_RKEY_OFF, RETH_DMALEN_OFF, DETH_QKEY_OFF, DETH_SRCQP_OFF,
} from "./wire";

@inline export function be16(p: u32): u32 { return <u32>bswap<u16>(load<u16>(p)); }
@inline export function be32(p: u32): u32 { return bswap<u32>(load<u32>(p)); }
@inline export function be64(p: u32): u64 { return bswap<u64>(load<u64>(p)); }
@inline export function put16(p: u32, v: u32): void { store<u16>(p, bswap<u16>(<u16>v)); }
@inline export function put32(p: u32, v: u32): void { store<u32>(p, bswap<u32>(v)); }
@inline export function put64(p: u32, v: u64): void { store<u64>(p, bswap<u64>(v)); }

// ---- Ethernet II ----
/** Ethernet header: MACs copied from src (dst MAC 6 bytes then src MAC 6 bytes), IPv4 type. */
@inline export function ethPut(p: u32, macs: u32): void {
  store<u64>(p + ETH_DST_OFF, load<u64>(macs)); // 8 of the 12 MAC bytes
  store<u32>(p + ETH_SRC_OFF + 2, load<u32>(macs, 8)); // the last 4 bytes of the source MAC
  put16(p + ETH_TYPE_OFF, ETHERTYPE_IPV4);
}

// ---- IPv4 (RFC 791 §3.1) ----
/** RFC 1071 checksum of the 20-byte header at p with its checksum field as it is. */
@inline export function ipSum(p: u32): u32 {
  // Ones' complement sum of the little-endian u16 words (byte order only swaps the result),
  // summed as five u32 words in 64 bits and folded.
  let s: u64 = <u64>load<u32>(p) + <u64>load<u32>(p, 4) + <u64>load<u32>(p, 8) + <u64>load<u32>(p, 12)
    + <u64>load<u32>(p, 16);
  s = (s & 0xffffffff) + (s >> 32);
  let t = <u32>(s & 0xffff) + <u32>(s >> 16);
  t = (t & 0xffff) + (t >> 16);
  return (t & 0xffff) + (t >> 16);
}

/** IPv4 header without options; addresses as 4 wire bytes each (u32 loaded little-endian). */
@inline export function ipPut(p: u32, tos: u32, totLen: u32, ttl: u32, srcWire: u32, dstWire: u32): void {
  store<u8>(p + IP_VER_IHL_OFF, <u8>IP_VER_IHL);
  store<u8>(p + IP_TOS_OFF, <u8>tos);
  put16(p + IP_TOTLEN_OFF, totLen);
  put16(p + IP_ID_OFF, 0);
  put16(p + IP_FRAG_OFF, IP_DF);
  store<u8>(p + IP_TTL_OFF, <u8>ttl);
  store<u8>(p + IP_PROTO_OFF, <u8>IPPROTO_UDP);
  store<u16>(p + IP_CSUM_OFF, 0);
  store<u32>(p + IP_SRC_OFF, srcWire);
  store<u32>(p + IP_DST_OFF, dstWire);
  store<u16>(p + IP_CSUM_OFF, <u16>(~ipSum(p)));
}

// ---- UDP (RFC 768); checksum 0 = not computed (A17.4.2 allows it for IPv4) ----
@inline export function udpPut(p: u32, sport: u32, len: u32): void {
  put16(p + UDP_SPORT_OFF, sport);
  put16(p + UDP_DPORT_OFF, ROCEV2_UDP_PORT);
  put16(p + UDP_LEN_OFF, len);
  store<u16>(p + UDP_CSUM_OFF, 0);
}

// ---- BTH (§9.2) ----
@inline export function bthPut(p: u32, op: u32, seM: u32, pad: u32, pkey: u32, dqp: u32, ackreq: bool, psn: u32): void {
  store<u8>(p + BTH_OPCODE_OFF, <u8>op);
  store<u8>(p + BTH_FLAGS_OFF, <u8>((seM & 0xc0) | (pad << BTH_PAD_SHIFT)));
  put16(p + BTH_PKEY_OFF, pkey);
  put32(p + BTH_DQP_OFF, dqp & QPN_MASK); // byte 4 (FECN/BECN, reserved) is 0
  put32(p + BTH_PSN_OFF, (ackreq ? BTH_ACKREQ : 0) | (psn & PSN_MASK));
}
@inline export function bthOpcode(p: u32): u32 { return <u32>load<u8>(p + BTH_OPCODE_OFF); }
@inline export function bthFlags(p: u32): u32 { return <u32>load<u8>(p + BTH_FLAGS_OFF); }
@inline export function bthDqp(p: u32): u32 { return be32(p + BTH_DQP_OFF) & QPN_MASK; }
@inline export function bthPsnWord(p: u32): u32 { return be32(p + BTH_PSN_OFF); }

// ---- RETH (§9.3.3), DETH (§9.3.2), 4-byte headers (AETH §9.3.5, ImmDt §9.3.6, IETH §9.3.7) ----
@inline export function rethPut(p: u32, va: u64, rkey: u32, len: u32): void {
  put64(p + RETH_VA_OFF, va);
  put32(p + RETH_RKEY_OFF, rkey);
  put32(p + RETH_DMALEN_OFF, len);
}
@inline export function rethVa(p: u32): u64 { return be64(p + RETH_VA_OFF); }
@inline export function rethRkey(p: u32): u32 { return be32(p + RETH_RKEY_OFF); }
@inline export function rethLen(p: u32): u32 { return be32(p + RETH_DMALEN_OFF); }
@inline export function dethPut(p: u32, qkey: u32, srcQp: u32): void {
  put32(p + DETH_QKEY_OFF, qkey);
  put32(p + DETH_SRCQP_OFF, srcQp & QPN_MASK); // reserved byte 0
}
