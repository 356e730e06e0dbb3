// RC transport layouts, shared by the firmware (asc) and the host (tsc): constants and enums
// only. Memory regions (IBTA vol. 1 §10.6), send / receive work requests (§10.8, §11.4) and
// completions (§11.4.2.1); the numbering of access flags, work completion status and opcodes
// follows libibverbs (ibv_access_flags, ibv_wc_status, ibv_wc_opcode) so a verbs reader feels
// at home. Per-QP queues live at RCQ_BASE + qpn * RCQ_SIZE (memmap.ts).

// ---- memory region table entry (MR_TABLE_BASE, MR_ENTRY_SIZE bytes) ----
export const MR_VALID: u32 = 0; // u32: 1 while registered
export const MR_ACCESS: u32 = 4; // u32 MrAccess bits
export const MR_KEY: u32 = 8; // u32 lkey == rkey: generation << 8 | index
export const MR_CARD: u32 = 12; // u32 card offset of the first byte
export const MR_LEN: u32 = 16; // u32 bytes
export const MR_GEN: u32 = 20; // u32 registrations of this entry so far (stale keys fail)
export const MR_VA: u32 = 24; // u64 virtual address of the first byte (what RETH VAs name)
export const MR_KEY_INDEX_MASK: u32 = 0xff;

/** Access rights of a memory region (ibv_access_flags bits). Local read is always allowed. */
export const MR_LOCAL_WRITE: u32 = 1;
export const MR_REMOTE_WRITE: u32 = 2;
export const MR_REMOTE_READ: u32 = 4;
/** rdmaMrRegister's `guest` for a range of card memory rather than of a guest RAM window. */
export const MR_CARD_MEMORY: u32 = 0xffffffff; // -1 as the i32 it is passed as

// ---- per-QP block at RCQ_BASE + qpn * RCQ_SIZE ----
export const RC_SQ_DEPTH: u32 = 256;
export const RC_RQ_DEPTH: u32 = 128;
export const RC_CQ_DEPTH: u32 = 256;
export const RCQ_CTRL: u32 = 0; // control words below (512 bytes)
export const RCQ_SQ: u32 = 512; // send queue: RC_SQ_DEPTH WQEs of SWQE_SIZE (64)
export const RCQ_RQ: u32 = RCQ_SQ + RC_SQ_DEPTH * 64; // receive queue: RC_RQ_DEPTH WQEs of RWQE_SIZE (32)
export const RCQ_CQ: u32 = RCQ_RQ + RC_RQ_DEPTH * 32; // completion queue: RC_CQ_DEPTH CQEs of CQE_SIZE (32), up to RCQ_SIZE
export const RCQ_END: u32 = RCQ_CQ + RC_CQ_DEPTH * 32; // 29184: must stay <= RCQ_SIZE (memmap.ts)

// Control words (u32 unless noted). Ring indexes are free-running; slot = index % depth.
export const RCC_ON: u32 = 0; // 1 when the RC engine drives this QP (rdmaRcEnable)
export const RCC_SQ_TAIL: u32 = 4; // WQEs posted (the host writes the WQE at this slot, then rdmaRcPostSend)
export const RCC_SQ_NEXT: u32 = 8; // next WQE to transmit
export const RCC_SQ_HEAD: u32 = 12; // oldest WQE not completed
export const RCC_RQ_TAIL: u32 = 16; // receive WQEs posted
export const RCC_RQ_HEAD: u32 = 20; // oldest receive WQE not consumed
export const RCC_CQ_PROD: u32 = 24; // completions written (firmware)
export const RCC_CQ_CONS: u32 = 28; // completions read (host)
export const RCC_RECV_OFF: u32 = 32; // responder: bytes of the SEND in progress placed so far
export const RCC_WR_ADDR: u32 = 36; // responder: card offset the next RDMA WRITE payload goes to
export const RCC_WR_LEFT: u32 = 40; // responder: bytes of the RDMA WRITE in progress still due
export const RCC_NAK_SENT: u32 = 44; // responder: a PSN sequence error NAK went out for the expected PSN
export const RCC_TIMER: u32 = 48; // requester: 1 while the retransmission timer runs
export const RCC_SQ_HWM: u32 = 52; // requester: WQEs ever transmitted (below it a WQE has its PSNs)
export const RCC_DEADLINE: u32 = 56; // f64 ns: the retransmission timer fires at this virtual time
export const RCC_TIMEOUT: u32 = 64; // f64 ns: local ACK timeout
export const RCC_RNR_UNTIL: u32 = 72; // f64 ns: end of an RNR wait
export const RCC_RNR_WAIT: u32 = 80; // requester: 1 while waiting out an RNR NAK
export const RCC_RNR_USED: u32 = 84; // requester: RNR NAKs since the last progress (limit QP_RNR_RETRY; 7 = without limit)
export const RCC_ACK_EVERY: u32 = 88; // responder: an ACK at least every this many packets
export const RCC_MIN_RNR: u32 = 92; // responder: RNR NAK timer code it sends (§9.7.5.2.8 table 45)
export const RCC_RESEND: u32 = 96; // requester: 1 = go-back-N from the oldest unacknowledged PSN is due
export const RCC_MAX_WR: u32 = 100; // requester: WQEs in flight at most
export const RCC_FROM_PKT: u32 = 104; // requester: packet of WQE RCC_SQ_NEXT to start from (go-back-N)
export const RCC_ACK_OWED: u32 = 108; // responder: 1 while an ACK is owed, sent once the receive batch is done
export const RCC_ACK_PSN: u32 = 112; // responder: the PSN that owed ACK acknowledges (the latest one)
export const RCC_TXD: u32 = 128; // transmit descriptor (wire.ts TXD_*, TXD_SIZE bytes): the host fills
// the addresses (MACs, IPs, UDP source port, TOS/TTL, P_Key, port); the engine fills the rest.

// ---- send work request (SWQE_SIZE bytes): the host fills WRID..IMM, the firmware the rest ----
export const SWQE_SIZE: u32 = 64;
export const SWQE_WRID: u32 = 0; // u64 work request id, returned in the completion
// OP, POS and FLAGS share the word at 8, so a host that writes a WrOp there as a u32 gets
// POS 0 and FLAGS 0 (signaled, whole message), which is what it meant.
export const SWQE_OP: u32 = 8; // u8 WrOp
export const SWQE_POS: u32 = 9; // u8 wire.ts Pos of the packet a WRITE_PKT schedules (FIRST/MIDDLE/LAST/ONLY)
export const SWQE_FLAGS: u32 = 10; // u16 SWF_*
export const SWQE_LKEY: u32 = 12; // u32 local key of the buffer
export const SWQE_LADDR: u32 = 16; // u64 local VA (in the MR of LKEY)
export const SWQE_LEN: u32 = 24; // u32 bytes
export const SWQE_RKEY: u32 = 28; // u32 remote key (WRITE, READ)
export const SWQE_RADDR: u32 = 32; // u64 remote VA (WRITE, READ)
export const SWQE_IMM: u32 = 40; // u32 immediate data (SEND_IMM, WRITE_IMM), as it goes on the wire; WRITE_PKT: the message's total bytes (RETH DMA length)
export const SWQE_CARD: u32 = 44; // firmware: card offset of the local buffer
export const SWQE_PSN: u32 = 48; // firmware: first PSN
export const SWQE_NPKT: u32 = 52; // firmware: PSNs it takes (a READ: its response packets)
export const SWQE_DONE: u32 = 56; // firmware: READ response packets placed so far
export const SWQE_STATUS: u32 = 60; // firmware: WcStatus found when posted (0 = valid)

/**
 * Work request opcodes. WRITE_PKT schedules ONE packet of an RDMA WRITE message at SWQE_POS:
 * a message goes out packet by packet from WQEs posted one at a time (the storage-side NIC's
 * initial / intermediate / tail WQEs). FIRST and ONLY carry the RETH (VA = SWQE_RADDR, R_Key,
 * DMA length = SWQE_IMM); FIRST / MIDDLE payloads are exactly the path MTU, LAST / ONLY at most.
 */
export enum WrOp { SEND = 0, SEND_IMM = 1, WRITE = 2, WRITE_IMM = 3, READ = 4, WRITE_PKT = 5 }
/** SWQE_FLAGS: no completion when the work request succeeds (an error still completes). */
export const SWF_UNSIGNALED: u32 = 1;

// ---- receive work request (RWQE_SIZE bytes) ----
export const RWQE_SIZE: u32 = 32;
export const RWQE_WRID: u32 = 0; // u64
export const RWQE_LADDR: u32 = 8; // u64 local VA
export const RWQE_LKEY: u32 = 16; // u32
export const RWQE_LEN: u32 = 20; // u32
export const RWQE_CARD: u32 = 24; // firmware: card offset of the buffer
export const RWQE_STATUS: u32 = 28; // firmware: WcStatus found when posted

// ---- completion (CQE_SIZE bytes) ----
export const CQE_SIZE: u32 = 32;
export const CQE_WRID: u32 = 0; // u64
export const CQE_STATUS: u32 = 8; // u32 WcStatus
export const CQE_OPCODE: u32 = 12; // u32 WcOp
export const CQE_BYTE_LEN: u32 = 16; // u32 bytes received (RECV) or transferred
export const CQE_IMM: u32 = 20; // u32 immediate data when CQE_FLAGS has CQF_IMM
export const CQE_QPN: u32 = 24; // u32
export const CQE_FLAGS: u32 = 28; // u32 CQF_*
export const CQF_IMM: u32 = 1;

/** Work completion status (ibv_wc_status numbering). */
export enum WcStatus {
  SUCCESS = 0, LOC_LEN_ERR = 1, LOC_QP_OP_ERR = 2, LOC_PROT_ERR = 4, WR_FLUSH_ERR = 5, REM_INV_REQ_ERR = 9,
  REM_ACCESS_ERR = 10, REM_OP_ERR = 11, RETRY_EXC_ERR = 12, RNR_RETRY_EXC_ERR = 13,
}

/** Work completion opcode (ibv_wc_opcode numbering). */
export enum WcOp { SEND = 0, RDMA_WRITE = 1, RDMA_READ = 2, RECV = 128, RECV_RDMA_WITH_IMM = 129 }

/** QP_RNR_RETRY value meaning "retry without limit" (§9.7.5.2.8). */
export const RNR_RETRY_INFINITE: u32 = 7;
