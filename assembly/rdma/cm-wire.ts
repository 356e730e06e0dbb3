// RDMA-CM wire constants and the connection table layout, shared by the firmware (rdma/cm.ts)
// and the host (tsc): constants and enums only, every integer typed u32.
// Sections: IBTA vol. 1 rel. 1.4 §13.4 (MAD common header), §12.6 (CM messages: REQ §12.6.5,
// REP §12.6.8, RTU §12.6.9, REJ §12.6.7, DREQ §12.6.10, DREP §12.6.11), Annex A11 (RDMA IP CM
// service: service ID, the 36-byte IP private data header), NVMe-oF 1.1 §7.3 RDMA transport
// (CM private data of REQ and REP).

// ---- MAD common header (§13.4.3), 24 bytes, then 232 bytes of attribute data ----
export const MAD_SIZE: u32 = 256;
export const MAD_BASE_VERSION_OFF: u32 = 0; // u8 = 1
export const MAD_CLASS_OFF: u32 = 1; // u8 management class
export const MAD_CLASS_VERSION_OFF: u32 = 2; // u8 = 2 for CM
export const MAD_METHOD_OFF: u32 = 3; // u8 R [7] | method [6:0]
export const MAD_STATUS_OFF: u32 = 4; // u16
export const MAD_TID_OFF: u32 = 8; // u64 transaction ID
export const MAD_ATTR_ID_OFF: u32 = 16; // u16
export const MAD_ATTR_MOD_OFF: u32 = 20; // u32
export const MAD_BASE_VERSION: u32 = 1;
export const MGMT_CLASS_CM: u32 = 0x07;
export const CM_CLASS_VERSION: u32 = 2;
export const MAD_METHOD_SEND: u32 = 0x03;

// ---- CM attribute IDs (§12.6, table 105) ----
export const CM_ATTR_REQ: u32 = 0x0010; // ConnectRequest
export const CM_ATTR_REJ: u32 = 0x0012; // ConnectReject
export const CM_ATTR_REP: u32 = 0x0013; // ConnectReply
export const CM_ATTR_RTU: u32 = 0x0014; // ReadyToUse
export const CM_ATTR_DREQ: u32 = 0x0015; // DisconnectRequest
export const CM_ATTR_DREP: u32 = 0x0016; // DisconnectReply

// ---- REQ (§12.6.5), offsets from the MAD start ----
export const REQ_LOCAL_COMM_ID: u32 = 24; // u32
export const REQ_SERVICE_ID: u32 = 32; // u64
export const REQ_LOCAL_CA_GUID: u32 = 40; // u64
export const REQ_LOCAL_QKEY: u32 = 52; // u32
export const REQ_LOCAL_QPN: u32 = 56; // u24 QPN | u8 responder resources
export const REQ_INITIATOR_DEPTH: u32 = 60; // u24 local EECN | u8 initiator depth
export const REQ_REMOTE_EECN: u32 = 64; // u24 remote EECN | remote CM response timeout [7:3] | transport service type [2:1] | E2E flow control [0]
export const REQ_STARTING_PSN: u32 = 68; // u24 PSN | local CM response timeout [7:3] | retry count [2:0]
export const REQ_PKEY: u32 = 72; // u16
export const REQ_MTU: u32 = 74; // path MTU [7:4] | RDC exists [3] | RNR retry count [2:0]
export const REQ_MAX_CM_RETRIES: u32 = 75; // max CM retries [7:4] | SRQ [3] | extended transport [2:0]
export const REQ_PRIMARY_LOCAL_LID: u32 = 76; // u16
export const REQ_PRIMARY_REMOTE_LID: u32 = 78; // u16
export const REQ_PRIMARY_LOCAL_GID: u32 = 80; // 16 bytes (RoCEv2 over IPv4: ::ffff:a.b.c.d)
export const REQ_PRIMARY_REMOTE_GID: u32 = 96; // 16 bytes
export const REQ_PRIMARY_FLOW_LABEL: u32 = 112; // flow label [31:12] | reserved | packet rate [5:0]
export const REQ_PRIMARY_TRAFFIC_CLASS: u32 = 116; // u8
export const REQ_PRIMARY_HOP_LIMIT: u32 = 117; // u8
export const REQ_PRIMARY_SL: u32 = 118; // SL [7:4] | subnet local [3]
export const REQ_PRIMARY_ACK_TIMEOUT: u32 = 119; // local ACK timeout [7:3]
export const REQ_ALTERNATE_PATH: u32 = 120; // 44 bytes, unused (zero)
export const REQ_PRIVATE_DATA: u32 = 164; // 92 bytes, to the end of the MAD
export const REQ_PRIVATE_DATA_LEN: u32 = 92;
export const CM_TRANSPORT_RC: u32 = 0; // transport service type
export const CM_TIMEOUT_EXP: u32 = 8; // CM response timeouts announced as 4.096 µs · 2^x: about 1 ms, the default retransmit timeout

// ---- REP (§12.6.8) ----
export const REP_LOCAL_COMM_ID: u32 = 24;
export const REP_REMOTE_COMM_ID: u32 = 28;
export const REP_LOCAL_QKEY: u32 = 32;
export const REP_LOCAL_QPN: u32 = 36; // u24 | reserved
export const REP_STARTING_PSN: u32 = 44; // u24 | reserved
export const REP_RESPONDER_RESOURCES: u32 = 48; // u8
export const REP_INITIATOR_DEPTH: u32 = 49; // u8
export const REP_TARGET_ACK_DELAY: u32 = 50; // target ACK delay [7:3] | failover [2:1] | E2E flow control [0]
export const REP_RNR_RETRY: u32 = 51; // RNR retry count [7:5] | SRQ [4]
export const REP_LOCAL_CA_GUID: u32 = 52; // u64
export const REP_PRIVATE_DATA: u32 = 60; // 196 bytes

// ---- RTU (§12.6.9), REJ (§12.6.7), DREQ (§12.6.10), DREP (§12.6.11) ----
export const RTU_LOCAL_COMM_ID: u32 = 24;
export const RTU_REMOTE_COMM_ID: u32 = 28;
export const REJ_LOCAL_COMM_ID: u32 = 24;
export const REJ_REMOTE_COMM_ID: u32 = 28;
export const REJ_MSG_REJECTED: u32 = 32; // message rejected [7:6]: 0 REQ, 1 REP, 2 other
export const REJ_INFO_LEN: u32 = 33; // reject info length [7:1]
export const REJ_REASON: u32 = 34; // u16
export const REJ_PRIVATE_DATA: u32 = 108; // 148 bytes (after 72 bytes of additional reject info)
export const REJ_MSG_REQ: u32 = 0;
export const REJ_REASON_INVALID_SERVICE_ID: u32 = 8;
export const REJ_REASON_CONSUMER: u32 = 28;
export const REJ_REASON_NO_QP: u32 = 1; // no QP available
export const DREQ_LOCAL_COMM_ID: u32 = 24;
export const DREQ_REMOTE_COMM_ID: u32 = 28;
export const DREQ_REMOTE_QPN: u32 = 32; // u24 | reserved
export const DREP_LOCAL_COMM_ID: u32 = 24;
export const DREP_REMOTE_COMM_ID: u32 = 28;

/** IB path MTU code (§9.7.7 / table in §14.2.5.6): 1 = 256 ... 5 = 4096. */
export const IB_MTU_256: u32 = 1;

// ---- RDMA IP CM service (Annex A11): service ID and the private data header ----
export const IP_CM_SID_PREFIX_HI: u32 = 0x00000000; // service ID bits [63:32]
export const IP_CM_SID_PREFIX_LO: u32 = 0x01000000; // bits [31:24] = 0x01, then port space [23:16], port [15:0]
export const IP_CM_PS_TCP: u32 = 0x06; // port space TCP
export const IP_CM_HDR_LEN: u32 = 36;
export const IP_CM_VERSION_OFF: u32 = 0; // u8 major [7:4] | minor [3:0] = 0
export const IP_CM_IPVER_OFF: u32 = 1; // IP version [7:4]
export const IP_CM_SPORT_OFF: u32 = 2; // u16 source port, big-endian
// Source and destination addresses: 16 bytes each at 4 and 20; an IPv4 address is the last 4 of them.
export const IP_CM_SRC_IP4_OFF: u32 = 16;
export const IP_CM_DST_IP4_OFF: u32 = 32;
export const IP_CM_IPV4: u32 = 0x40;
export const NVME_RDMA_PORT: u32 = 4420; // IANA "NVM Express over Fabrics"

// ---- NVMe-oF RDMA private data (NVMe-oF 1.1 §7.3.3 / §7.3.4), little-endian ----
export const NVMF_REQ_LEN: u32 = 32; // recfmt u16, qid u16, hrqsize u16, hsqsize u16, cntlid u16, 22 reserved
export const NVMF_REQ_RECFMT: u32 = 0;
export const NVMF_REQ_QID: u32 = 2;
export const NVMF_REQ_HRQSIZE: u32 = 4;
export const NVMF_REQ_HSQSIZE: u32 = 6;
export const NVMF_REQ_CNTLID: u32 = 8;
export const NVMF_REP_LEN: u32 = 32; // recfmt u16, crqsize u16, 28 reserved
export const NVMF_REP_RECFMT: u32 = 0;
export const NVMF_REP_CRQSIZE: u32 = 2;

// ---- connection states (one transition function, rdma/cm.ts) ----
export enum CmState {
  IDLE = 0, // free slot
  LISTEN = 1, // passive: a listener on a port (stays LISTEN; each REQ gets its own entry)
  REQ_SENT = 2, // active: REQ sent, waiting for REP (REQ retransmitted on timeout)
  REP_RCVD = 3, // active: REP received, QP to RTS, RTU going out
  REQ_RCVD = 4, // passive: REQ accepted, QP allocated
  REP_SENT = 5, // passive: REP sent, QP in RTR, waiting for RTU (REP retransmitted on timeout)
  ESTABLISHED = 6, // both: QP in RTS
  DISCONNECTING = 7, // DREQ sent, waiting for DREP (DREQ retransmitted on timeout)
  TIMEWAIT = 8, // QP in ERR; the slot is freed after one timeout
  REJECTED = 9, // active: REJ received (reason in CN_REJ_REASON)
  TIMED_OUT = 10, // active: gave up after the retry limit (a passive connection goes to TIMEWAIT)
}
export enum CmRole { NONE = 0, ACTIVE = 1, PASSIVE = 2 }

// ---- control block (CM_CTRL, memmap.ts) ----
export const CMC_MAC: u32 = 0; // 6 bytes, our Ethernet address
export const CMC_IP: u32 = 8; // u32 our IPv4 address as wire bytes
export const CMC_NOW: u32 = 16; // f64 virtual time of the last rdmaCmPoll (ns)
export const CMC_TIMEOUT: u32 = 24; // u32 retransmit timeout, ns
export const CMC_MAX_RETRIES: u32 = 28; // u32 retransmits before giving up
export const CMC_NEXT_GEN: u32 = 32; // u32 generation for local comm IDs
export const CMC_PRNG: u32 = 36; // u32 xorshift state for starting PSNs (seeded from the IP)
export const CMC_UD_PSN: u32 = 40; // u32 PSN of the next MAD datagram
export const CMC_READY: u32 = 44; // u32 1 after rdmaCmInit
// RC engine settings of every connected QP (rdmaCmSetRcDefaults; req.ts rcEnable's arguments).
export const CMC_RC_TIMEOUT: u32 = 48; // f64 local ACK timeout, virtual ns
export const CMC_RC_ACK_EVERY: u32 = 56; // u32 responder: an ACK at least every this many packets
export const CMC_RC_RNR: u32 = 60; // u32 RNR NAK timer code (§9.7.5.2.8 table 45)
export const CMC_RC_MAX_WR: u32 = 64; // u32 work requests in flight at most
export const CMC_TXD: u32 = 128; // a transmit descriptor (wire.ts TXD_SIZE)
export const CM_CTRL_BYTES: u32 = 256;

// ---- connection entry (CM_CONN_BASE + id · CM_CONN_SIZE, memmap.ts), u32 fields ----
export const CN_STATE: u32 = 0; // CmState
export const CN_ROLE: u32 = 4; // CmRole
export const CN_LOCAL_COMM_ID: u32 = 8;
export const CN_REMOTE_COMM_ID: u32 = 12;
export const CN_LOCAL_QPN: u32 = 16;
export const CN_REMOTE_QPN: u32 = 20;
export const CN_LOCAL_PSN: u32 = 24; // first PSN we send
export const CN_REMOTE_PSN: u32 = 28; // first PSN the peer sends
export const CN_MTU: u32 = 32; // path MTU, bytes
export const CN_PORT: u32 = 36; // service port (4420)
export const CN_QID: u32 = 40;
export const CN_HRQSIZE: u32 = 44;
export const CN_HSQSIZE: u32 = 48;
export const CN_CNTLID: u32 = 52;
export const CN_CRQSIZE: u32 = 56; // from the REP (active) / what we answered (passive)
export const CN_REMOTE_IP: u32 = 60; // wire bytes
export const CN_REMOTE_MAC: u32 = 64; // 6 bytes
export const CN_TID: u32 = 72; // u64 transaction ID of the connection's MADs
export const CN_DEADLINE: u32 = 80; // f64 retransmit / timewait deadline (ns), 0 = none
export const CN_RETRIES: u32 = 88; // retransmits of the pending MAD so far
export const CN_REJ_REASON: u32 = 92; // REJ reason received (REJECTED)
export const CN_PENDING: u32 = 96; // 1 while CN_MAD holds a MAD to retransmit on timeout
export const CN_RETRY_CNT: u32 = 100; // QP retry count (3 bits) and RNR retry (3 bits)
export const CN_RNR_RETRY: u32 = 104;
export const CN_LOCAL_SPORT: u32 = 108; // IP CM source port (active side)
export const CN_MAD: u32 = 256; // the last MAD sent (MAD_SIZE bytes), for retransmission
export const CM_CONN_BYTES: u32 = 512;
export const CM_NONE: u32 = 0xffffffff;
