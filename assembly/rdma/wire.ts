// RoCEv2 wire constants, shared by the firmware (asc) and the host (tsc): constants and enums
// only, every integer typed u32 (aliased to number on the host, host/as-types.d.ts).
// Sections: IBTA Architecture Specification vol. 1 rel. 1.4 (§9.2 BTH, §9.3 extension
// headers, §9.4 opcodes, §9.5 pad, §7.8 ICRC) and Annex A17 RoCEv2 (A17.4 UDP port,
// A17.3.3 ICRC masks); RFC 791 (IPv4), RFC 768 (UDP), IEEE 802.3 (Ethernet II).

// ---- Ethernet II (IEEE 802.3 §3.2.6), no FCS in the frame rings ----
export const ETH_HDR_LEN: u32 = 14;
export const ETH_DST_OFF: u32 = 0;
export const ETH_SRC_OFF: u32 = 6;
export const ETH_TYPE_OFF: u32 = 12;
export const ETHERTYPE_IPV4: u32 = 0x0800;
export const ETH_MIN_FRAME: u32 = 60; // without FCS: shorter frames are padded on the wire

// ---- IPv4 (RFC 791 §3.1), no options ----
export const IP_HDR_LEN: u32 = 20;
export const IP_VER_IHL_OFF: u32 = 0; // version 4 | IHL 5 = 0x45
export const IP_VER_IHL: u32 = 0x45;
export const IP_TOS_OFF: u32 = 1; // DSCP | ECN: masked in the ICRC
export const IP_TOTLEN_OFF: u32 = 2;
export const IP_ID_OFF: u32 = 4;
export const IP_FRAG_OFF: u32 = 6; // flags [15:13] (DF = 0x4000, MF = 0x2000) | fragment offset [12:0]
export const IP_DF: u32 = 0x4000;
export const IP_MF_OFFSET_MASK: u32 = 0x3fff;
export const IP_TTL_OFF: u32 = 8; // masked in the ICRC
export const IP_PROTO_OFF: u32 = 9;
export const IP_CSUM_OFF: u32 = 10; // masked in the ICRC
export const IP_SRC_OFF: u32 = 12;
export const IP_DST_OFF: u32 = 16;
export const IPPROTO_UDP: u32 = 17;
export const IP_DEFAULT_TTL: u32 = 64;

// ---- UDP (RFC 768) ----
export const UDP_HDR_LEN: u32 = 8;
export const UDP_SPORT_OFF: u32 = 0;
export const UDP_DPORT_OFF: u32 = 2;
export const UDP_LEN_OFF: u32 = 4;
export const UDP_CSUM_OFF: u32 = 6; // 0 (not computed) on transmit; masked in the ICRC
export const ROCEV2_UDP_PORT: u32 = 4791; // Annex A17.4.1
// Source port: the entropy field of A17.4.1; we use 0xC000 | (src QP & 0x3FFF).
export const ROCEV2_SPORT_BASE: u32 = 0xc000;

// ---- Base Transport Header (§9.2), 12 bytes ----
export const BTH_LEN: u32 = 12;
export const BTH_OPCODE_OFF: u32 = 0;
export const BTH_FLAGS_OFF: u32 = 1; // SE [7] | MigReq [6] | PadCnt [5:4] | TVer [3:0]
export const BTH_SE: u32 = 0x80;
export const BTH_MIG: u32 = 0x40;
export const BTH_PAD_SHIFT: u32 = 4;
export const BTH_PAD_MASK: u32 = 0x30;
export const BTH_TVER_MASK: u32 = 0x0f;
export const BTH_TVER: u32 = 0;
export const BTH_PKEY_OFF: u32 = 2;
export const BTH_RESV8A_OFF: u32 = 4; // FECN/BECN on RoCEv2; masked (all ones) in the ICRC
export const BTH_DQP_OFF: u32 = 4; // u32 big-endian word whose low 24 bits are the dest QP
export const BTH_PSN_OFF: u32 = 8; // AckReq [31] | reserved [30:24] | PSN [23:0]
export const BTH_ACKREQ: u32 = 0x80000000;
export const DEFAULT_PKEY: u32 = 0xffff;
export const PSN_MASK: u32 = 0xffffff;
export const QPN_MASK: u32 = 0xffffff;

// ---- extension headers (§9.3) ----
export const RETH_LEN: u32 = 16; // VA u64 | R_Key u32 | DMA length u32 (§9.3.3)
export const RETH_VA_OFF: u32 = 0;
export const RETH_RKEY_OFF: u32 = 8;
export const RETH_DMALEN_OFF: u32 = 12;
export const AETH_LEN: u32 = 4; // syndrome u8 | MSN u24 (§9.3.5)
export const MSN_MASK: u32 = 0xffffff; // MSN is 24 bits and wraps (§9.7.5.1.2)
export const IMMDT_LEN: u32 = 4; // §9.3.6
export const IETH_LEN: u32 = 4; // R_Key to invalidate (§9.3.7)
export const DETH_LEN: u32 = 8; // Q_Key u32 | reserved u8 | SrcQP u24 (§9.3.2)
export const DETH_QKEY_OFF: u32 = 0;
export const DETH_SRCQP_OFF: u32 = 4;
export const ATOMICETH_LEN: u32 = 28; // VA u64 | R_Key u32 | swap/add u64 | compare u64 (§9.3.4)
export const ATOMICACKETH_LEN: u32 = 8; // original remote data u64 (§9.3.5.3)
export const ICRC_LEN: u32 = 4;
export const CNP_RESERVED_LEN: u32 = 16; // the 16 reserved bytes after a CNP's BTH (Annex A17.9.2)

// AETH syndrome (§9.3.5 table 43): [7:5] type, [4:0] credit count / RNR timer / NAK code.
export const AETH_ACK: u32 = 0x00;
export const AETH_RNR_NAK: u32 = 0x20;
export const AETH_NAK: u32 = 0x60;
export const AETH_TYPE_MASK: u32 = 0xe0;
export const NAK_PSN_SEQ_ERROR: u32 = 0;
export const NAK_INVALID_REQUEST: u32 = 1;
export const NAK_REMOTE_ACCESS_ERROR: u32 = 2;
export const NAK_REMOTE_OP_ERROR: u32 = 3;
export const AETH_CREDIT_INVALID: u32 = 0x1f; // "no credit information"

// CM datagrams (RDMA-CM MADs on QP1): Q_Key 0x80010000 (IBTA §12, REFERENCE.md).
export const QP1: u32 = 1;
export const GSI_QKEY: u32 = 0x80010000;

// ---- opcodes (§9.4.1 table 38): transport [7:5] | operation [4:0] ----
export enum Op {
  RC_SEND_FIRST = 0x00,
  RC_SEND_MIDDLE = 0x01,
  RC_SEND_LAST = 0x02,
  RC_SEND_LAST_IMM = 0x03,
  RC_SEND_ONLY = 0x04,
  RC_SEND_ONLY_IMM = 0x05,
  RC_WRITE_FIRST = 0x06,
  RC_WRITE_MIDDLE = 0x07,
  RC_WRITE_LAST = 0x08,
  RC_WRITE_LAST_IMM = 0x09,
  RC_WRITE_ONLY = 0x0a,
  RC_WRITE_ONLY_IMM = 0x0b,
  RC_READ_REQUEST = 0x0c,
  RC_READ_RESPONSE_FIRST = 0x0d,
  RC_READ_RESPONSE_MIDDLE = 0x0e,
  RC_READ_RESPONSE_LAST = 0x0f,
  RC_READ_RESPONSE_ONLY = 0x10,
  RC_ACK = 0x11,
  RC_ATOMIC_ACK = 0x12,
  RC_CMP_SWAP = 0x13,
  RC_FETCH_ADD = 0x14,
  RC_SEND_LAST_INV = 0x16,
  RC_SEND_ONLY_INV = 0x17,
  UD_SEND_ONLY = 0x64,
  UD_SEND_ONLY_IMM = 0x65,
  CNP = 0x81, // RoCEv2 congestion notification packet (Annex A17.9.2)
}

/** Where a packet sits in its message (§9.4: FIRST/MIDDLE/LAST/ONLY); NONE for ACKs and requests without payload. */
export enum Pos { NONE = 0, FIRST = 1, MIDDLE = 2, LAST = 3, ONLY = 4 }

/** What kind of operation an opcode belongs to. */
export enum OpClass { SEND = 1, WRITE = 2, READ_REQUEST = 3, READ_RESPONSE = 4, ACK = 5, ATOMIC = 6, ATOMIC_ACK = 7, CNP = 8 }

export enum Transport { RC = 0, UC = 1, RD = 2, UD = 3 } // opcode [7:5]

// ---- opcode table entry (rdma/opcodes.ts), 16 bytes per opcode, 256 entries ----
export const OPT_ENTRY_SIZE: u32 = 16;
export const OPT_VALID: u32 = 0; // u8: 1 when the opcode is one we handle
export const OPT_CLASS: u32 = 1; // u8 OpClass
export const OPT_POS: u32 = 2; // u8 Pos
export const OPT_HDRLEN: u32 = 3; // u8: BTH + extension headers, bytes
export const OPT_FLAGS: u32 = 4; // u16 OPF_*
export const OPT_RETH: u32 = 6; // u8 offsets of each extension header from the BTH start, 0 = absent
export const OPT_AETH: u32 = 7;
export const OPT_IMMDT: u32 = 8;
export const OPT_IETH: u32 = 9;
export const OPT_DETH: u32 = 10;
export const OPT_ATOMICETH: u32 = 11;
export const OPT_ATOMICACKETH: u32 = 12;
export const OPT_CNP: u32 = 13; // the CNP's reserved bytes
export const OPF_RETH: u32 = 1 << 0;
export const OPF_AETH: u32 = 1 << 1;
export const OPF_IMMDT: u32 = 1 << 2;
export const OPF_IETH: u32 = 1 << 3;
export const OPF_DETH: u32 = 1 << 4;
export const OPF_ATOMICETH: u32 = 1 << 5;
export const OPF_ATOMICACKETH: u32 = 1 << 6;
export const OPF_PAYLOAD: u32 = 1 << 7; // carries payload (may be 0 bytes for SEND/WRITE ONLY)
export const OPF_REQUEST: u32 = 1 << 8; // sent by a requester (else a response)
export const OPF_ACKREQ: u32 = 1 << 9; // a requester sets AckReq on it (ends a request message on RC)
export const OPF_RC: u32 = 1 << 10; // valid on a reliable connection
export const OPF_UD: u32 = 1 << 11; // valid on an unreliable datagram QP
export const OPF_SOLICIT: u32 = 1 << 12; // may carry SE (ends a SEND or a WRITE with immediate)
export const OPF_CNP: u32 = 1 << 13; // 16 reserved bytes follow the BTH (CNP)

// ---- receive result log entry (RXLOG_BASE, memmap.ts), one per frame taken from the RX ring ----
export const RXL_FRAME: u32 = 0; // u32 frame number, 1-based since init (Wireshark's numbering on replay)
export const RXL_OPCODE: u32 = 4; // u8 BTH opcode (0 when the frame has no BTH)
export const RXL_POS: u32 = 5; // u8 Pos
export const RXL_FLAGS: u32 = 6; // u8 RXF_*
export const RXL_PAD: u32 = 7; // u8 pad count
export const RXL_DQP: u32 = 8; // u32 dest QP
export const RXL_PSN: u32 = 12; // u32 PSN
export const RXL_REASON: u32 = 16; // u32 Counter of the drop reason, 0 when accepted
export const RXL_PAYLOAD_LEN: u32 = 20; // u32 payload bytes
export const RXL_CLASS: u32 = 24; // u8 OpClass (0 when unknown)
export const RXL_SLOT: u32 = 28; // u32 RX ring index the frame was in
export const RXF_ICRC_OK: u32 = 1; // the ICRC matched
export const RXF_ACCEPTED: u32 = 2; // passed every check
export const RXF_BTH: u32 = 4; // a BTH was found: opcode, dest QP and PSN are meaningful
export const RXF_ICRC_CHECKED: u32 = 8; // the ICRC was computed (the UDP/IP framing was sound)
export const RXF_ACKREQ: u32 = 16;

// ---- RDMA control words (RDMA_CTRL, memmap.ts), u32 each ----
export const RC_LOG_PROD: u32 = 0; // result log producer (firmware)
export const RC_LOG_CONS: u32 = 4; // result log consumer (host)
export const RC_RX_FRAMES: u32 = 8; // frames taken from the RX ring since init
export const RC_FLAGS: u32 = 12; // RCF_*
export const RCF_NO_ICRC_CHECK: u32 = 1; // skip the ICRC check on receive (benchmarks of the rest)
export const RCF_NO_LOG: u32 = 2; // do not write the result log

// ---- transmit descriptor (rdma/tx.ts): what one packet or one message needs ----
// The host (or a layer above) fills one and calls rdmaTxPacket / rdmaTxMessage.
export const TXD_SIZE: u32 = 128;
export const TXD_DST_MAC: u32 = 0; // 6 bytes
export const TXD_SRC_MAC: u32 = 6; // 6 bytes
export const TXD_SRC_IP: u32 = 12; // u32, network order as on the wire (bytes a.b.c.d)
export const TXD_DST_IP: u32 = 16;
export const TXD_SPORT: u32 = 20; // u16 UDP source port
export const TXD_TOS: u32 = 22; // u8
export const TXD_TTL: u32 = 23; // u8
export const TXD_OPCODE: u32 = 24; // u8 (rdmaTxPacket) / u8 OpClass (rdmaTxMessage)
export const TXD_BTH_FLAGS: u32 = 25; // u8: SE | M (pad and TVer are filled in)
export const TXD_PKEY: u32 = 26; // u16
export const TXD_DQP: u32 = 28; // u32
export const TXD_PSN: u32 = 32; // u32 first PSN; rdmaTxMessage writes back the next PSN
export const TXD_ACKREQ: u32 = 36; // u32: 1 = set AckReq (on the last packet of a message)
export const TXD_RETH_VA: u32 = 40; // u64
export const TXD_RETH_RKEY: u32 = 48; // u32
export const TXD_RETH_LEN: u32 = 52; // u32 (a READ REQUEST's DMA length)
export const TXD_AETH: u32 = 56; // u32: syndrome << 24 | MSN
export const TXD_IMM: u32 = 60; // u32 immediate data (as the u32 goes on the wire, big-endian)
export const TXD_IETH_RKEY: u32 = 64; // u32
export const TXD_DETH_QKEY: u32 = 68; // u32
export const TXD_DETH_SRCQP: u32 = 72; // u32
export const TXD_PAYLOAD: u32 = 76; // u32 card offset of the payload
export const TXD_LEN: u32 = 80; // u32 payload / message bytes
export const TXD_MTU: u32 = 84; // u32 path MTU for rdmaTxMessage: 256, 512, 1024, 2048 or 4096
export const TXD_IMM_FLAG: u32 = 88; // u32: 1 = a message with immediate data (SEND/WRITE)
export const TXD_PORT: u32 = 92; // u32 frame ring port number (NET slot port)
export const TXD_ATOMIC_SWAP: u32 = 96; // u64 swap/add data
export const TXD_ATOMIC_CMP: u32 = 104; // u64 compare data
export const TXD_ATOMIC_ORIG: u32 = 112; // u64 original data of an ATOMIC ACK
export const TXD_FROM_PKT: u32 = 120; // u32: rdmaTxMessage starts at this packet of the message (go-back-N resend)

/** Path MTUs a message may be cut at (§9.7.7 / A17: 256..4096). */
export const PMTU_MIN: u32 = 256;
export const PMTU_MAX: u32 = 4096;
