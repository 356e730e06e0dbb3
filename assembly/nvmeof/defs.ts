// NVMe over Fabrics 1.1, RDMA transport: capsule formats (constants only; asc and tsc).
// A command capsule is the 64-byte SQE (nvme/spec.ts SQE_*) followed by in-capsule data; a
// response capsule is the 16-byte CQE (nvme/spec.ts CQE_*). Sections: NVMe base 2.0 §4.1.2
// (SGL), NVMe-oF 1.1 §2 (capsules), §3 (Fabrics commands), §7.3 (RDMA transport).

// ---- SQE flags: PSDT = 01b, SGLs for data (NVMe-oF requires SGLs, base §4.2 Figure 88) ----
export const CDW0_PSDT_SGL: u32 = 1 << 14;

// ---- SGL descriptor in DPTR (SQE bytes 24..39), base §4.1.2.1 Figure 114 ----
export const SQE_SGL1: u32 = 24;
export const SGL_ADDR: u32 = 0; // u64
export const SGL_KEYED_LEN: u32 = 8; // u24 length of a keyed data block (bytes 8..10)
export const SGL_KEYED_KEY: u32 = 11; // u32 key of a keyed data block (bytes 11..14)
export const SGL_LEN: u32 = 8; // u32 length of a (non-keyed) data block
export const SGL_ID: u32 = 15; // identifier: type [7:4], subtype [3:0]
export const SGL_ID_KEYED: u32 = 0x40; // keyed data block, address (type 4h, subtype 0h)
export const SGL_ID_KEYED_INV: u32 = 0x4f; // keyed data block, invalidate key (subtype Fh)
export const SGL_ID_INCAPSULE: u32 = 0x01; // data block, offset into the capsule's data (type 0h, subtype 1h)
export const SGL_KEYED_MAX: u32 = 0xffffff; // a keyed data block's length is 24 bits

// ---- in-capsule data (NVMe-oF §2.2, §7.3.2): starts right after the SQE ----
export const CAPSULE_DATA_OFF: u32 = 64;
export const INCAPSULE_MAX: u32 = 4096; // what our target accepts (IOCCSZ = (64 + 4096) / 16)

// ---- Fabrics commands (NVMe-oF §3): opcode 7Fh, type at SQE byte 4 ----
export const OPC_FABRICS: u32 = 0x7f;
export const FAB_FCTYPE: u32 = 4; // u8
export const FCTYPE_PROPERTY_SET: u32 = 0x00;
export const FCTYPE_CONNECT: u32 = 0x01;
export const FCTYPE_PROPERTY_GET: u32 = 0x04;
// Property Get / Set (§3.4, §3.5)
export const PROP_ATTRIB: u32 = 40; // u8: size, 0 = 4 bytes, 1 = 8 bytes
export const PROP_OFFSET: u32 = 44; // u32 register offset (nvme/regs.ts: CAP, VS, CC, CSTS)
export const PROP_VALUE: u32 = 48; // u64 (Set)
export const PROP_SIZE_4: u32 = 0;
export const PROP_SIZE_8: u32 = 1;
// Connect (§3.3): command fields, and the 1024-byte data (in-capsule here)
export const CONN_RECFMT: u32 = 40; // u16, 0
export const CONN_QID: u32 = 42; // u16
export const CONN_SQSIZE: u32 = 44; // u16, 0's based
export const CONN_CATTR: u32 = 46; // u8
export const CONN_KATO: u32 = 48; // u32 ms
export const CONN_DATA_SIZE: u32 = 1024;
export const CD_HOSTID: u32 = 0; // 16 bytes
export const CD_CNTLID: u32 = 16; // u16, FFFFh = dynamic controller on the admin queue
export const CD_SUBNQN: u32 = 256; // 256 bytes, NUL padded
export const CD_HOSTNQN: u32 = 512; // 256 bytes
export const NQN_LEN: u32 = 256;
export const CNTLID_DYNAMIC: u32 = 0xffff;
// Connect response: CQE DW0 [15:0] = the controller ID
// Connect status codes (SCT 1h, §3.3 Figure 21)
export const S_CONNECT_INCOMPATIBLE_FORMAT: u32 = (1 << 8) | 0x80;
export const S_CONNECT_CONTROLLER_BUSY: u32 = (1 << 8) | 0x81;
export const S_CONNECT_INVALID_PARAMETERS: u32 = (1 << 8) | 0x82;
export const S_CONNECT_INVALID_HOST: u32 = (1 << 8) | 0x84;

// ---- end-to-end protection (NVM command set §5.2; REFERENCE.md): Media and Data Integrity
// errors, SCT 2h (status field layout of nvme/spec.ts: SC [7:0], SCT [10:8], DNR [14]) ----
export const S_E2E_GUARD_ERROR: u32 = (2 << 8) | 0x82 | (1 << 14);
export const S_E2E_APPTAG_ERROR: u32 = (2 << 8) | 0x83 | (1 << 14);
export const S_E2E_REFTAG_ERROR: u32 = (2 << 8) | 0x84 | (1 << 14);
export const PI_SIZE: u32 = 8; // guard u16, application tag u16, reference tag u32 (big-endian)
export const PI_GUARD: u32 = 0;
export const PI_APPTAG: u32 = 2;
export const PI_REFTAG: u32 = 4;

// ---- RDMA-CM service for NVMe-oF (REFERENCE.md): TCP port space, port 4420 ----
export const NVMF_PORT: u32 = 4420;

// ---- Dataset Management range in the capsule (NVM command set §3.2.3 Figure 39): one range,
// deallocate; CDW10 NR = 0 (0's based), CDW11 AD. Range: context u32, NLB u32 (1's based), SLBA u64.
export const DSM_RANGE_BYTES: u32 = 16;
export const NLB_MAX: u32 = 0x10000; // Read / Write / Write Zeroes: NLB is 16 bits, 0's based

// ==== the NVMe-oF host's own layouts (memmap.ts NVMF_*; not wire formats) ====

/**
 * A fabric queue's lifecycle; nvmeof/host.ts queueSetState is its one transition function.
 *   IDLE → CONNECTING → LIVE ; any → IDLE (teardown) ; CONNECTING / LIVE → FAILED (connection lost)
 * With NQ_HOLD set (nvmfQueueHold), a lost connection holds the queue's requests instead:
 *   LIVE / RESUMING → RECONNECTING (no QP; requests wait) → RESUMING (bound to a new QP, the
 *   host's Fabrics Connect goes out on it) → LIVE (held requests resubmitted with new capsules)
 *   RECONNECTING / RESUMING → FAILED (the host gave up: held requests fail with IOERR)
 */
export enum NvmfQueueState { IDLE = 0, CONNECTING = 1, LIVE = 2, FAILED = 3, RECONNECTING = 4, RESUMING = 5 }

/**
 * A command capsule slot's lifecycle (nvmeof/host.ts slotSetState). A slot is reusable only
 * when both its SEND has completed and its response has arrived (a retransmitted SEND reads
 * the slot again).
 *   FREE → POSTED → ANSWERED (response first) → FREE / RAW_READY (SEND completion)
 *               └──→ SENT (SEND completion first) → FREE / RAW_READY (response)
 *   RAW_READY → FREE (the host read the result of a setup command)
 */
export enum SlotState { FREE = 0, POSTED = 1, ANSWERED = 2, SENT = 3, RAW_READY = 4 }

// Queue entry (NVMF_QUEUE_ENTRY_SIZE bytes at NVMF_BASE + q * NVMF_QUEUE_ENTRY_SIZE).
export const NQ_STATE: u32 = 0; // NvmfQueueState
export const NQ_QPN: u32 = 4; // RC QP (ESTABLISHED by the CM)
export const NQ_QID: u32 = 8; // NVMe-oF queue ID (0 = admin)
export const NQ_DEPTH: u32 = 12; // capsules in flight at most (<= NVMF_DEPTH, RC queue depths)
export const NQ_CAP_KEY: u32 = 16; // MR of the capsule slots (local read: the SENDs' source)
export const NQ_RESP_KEY: u32 = 20; // MR of the response buffers (local write: the RECVs' target)
export const NQ_BUSY: u32 = 24; // u64: bit i = capsule slot i not FREE
export const NQ_TO_POST: u32 = 32; // SEND WQEs written since the last rcPostSend (one post per poll)
export const NQ_TO_REPOST: u32 = 36; // receive WQEs written since the last rcPostRecv
export const NQ_WAIT_HEAD: u32 = 40; // requests waiting for a free slot: FIFO linked through R_NEXT
export const NQ_WAIT_TAIL: u32 = 44;
export const NQ_NRESP: u32 = 48; // response buffers (receive WQEs) posted
// Connection loss and recovery (nvmfQueueHold ... nvmfQueueFailHeld); the host reads these
// through nvmfQueueAddr to measure each outage.
export const NQ_HOLD: u32 = 52; // 1: a lost connection holds the requests (RECONNECTING) instead of failing them
export const NQ_LOST_AT: u32 = 56; // f64 virtual ns of the loss that opened the current outage
export const NQ_DONE_AT: u32 = 64; // f64 virtual ns of the first request completed after it (the outage's end)
export const NQ_OUTAGE: u32 = 72; // 1 from a loss until the first completion after recovery
export const NQ_HELD: u32 = 76; // requests taken back from lost connections since the last LIVE
export const NQ_LOSSES: u32 = 80; // connections this queue lost while holding (free-running)
export const NQ_RESUBMITTED: u32 = 84; // held requests resubmitted on new connections (free-running)
export const NQ_PROGRESS_AT: u32 = 88; // f64 virtual ns of the last response, or of the first command out on an idle queue (the host's I/O timeout)

// Capsule slot (NVMF_CAPSULE_SLOT bytes): SQE at 0, in-capsule data at CAPSULE_DATA_OFF, then
// the slot's bookkeeping in the spare bytes after the largest in-capsule data.
export const SLOT_META: u32 = CAPSULE_DATA_OFF + INCAPSULE_MAX;
export const SM_STATE: u32 = 0; // SlotState
export const SM_REQ: u32 = 4; // request index, or SM_RAW for a setup command of the host
export const SM_CID: u32 = 8; // the CID in flight (slot | generation << CID_GEN_SHIFT)
export const SM_GEN: u32 = 12; // uses of this slot so far
export const SM_CQE: u32 = 16; // 16 bytes: the response of a setup command, for nvmfRawResult
export const SM_RAW: u32 = 0xffffffff;

// CID = slot | generation << 6: the response names its slot, and a late copy of an older
// response on a reused slot has the wrong generation (counted err_nvmf_stale_response).
export const CID_SLOT_MASK: u32 = 0x3f; // NVMF_DEPTH = 64 slots
export const CID_GEN_SHIFT: u32 = 6;
export const CID_GEN_MASK: u32 = 0x3ff;

// Work request ids on a fabric queue's QP: a SEND's is its CID; a RECV's has WRID_RECV set and
// names its response buffer.
export const WRID_RECV: u32 = 0x10000;

// Remote disk (DISK_ENTRY_SIZE entry, memmap.ts DISK_*): after DISK_BASE_OFF, which it leaves 0.
export const DISK_NVMF_QUEUE_OFF: u32 = 20; // fabric queue serving the disk
export const DISK_NVMF_NSID_OFF: u32 = 24; // namespace on the target
export const DISK_NVMF_MAXBLK_OFF: u32 = 28; // blocks per command at most (the controller's MDTS), 0 = no limit
// Guest RAM window entry (GUEST_ENTRY_SIZE, memmap.ts GUEST_*): the key of the MR the host
// registered over the whole window with VA = card offset; keyed SGLs of that guest's data name it.
export const GUEST_NVMF_KEY_OFF: u32 = 8;

/** nvmfRawResult while the response has not arrived yet / for a CID not in flight on the queue. */
export const RAW_PENDING: u32 = 0;
export const RAW_UNKNOWN: u32 = 0xffffffff;
