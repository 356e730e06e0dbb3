// The one memory map of a card (DESIGN rule 1). Every region of a card's
// WebAssembly.Memory is named here; nothing else hard-codes an offset.
// This file is compiled by asc (firmware) and by tsc/esbuild (host), so it holds
// constants only; `u32` is aliased to `number` for TypeScript in host/as-types.d.ts.
//
//   0x0000_0000  FW_LOW      asc static data and the stub runtime's heap
//   0x0010_0000  FW_STATE    counters, guest/disk/function/queue tables, doorbells, IRQ out
//   0x0020_0000  BAR         one register file per PCIe function (BAR0 contents)
//   0x0040_0000  CARD_MEM    shadow rings, request pool, host-IO rings, scratch, frame rings
//   CARD_FIXED_END ...       RAM disks and guest RAM windows, placed by host/layout.ts

export const PAGE: u32 = 0x10000; // wasm page, also the alignment of dynamic regions

// ---- firmware low memory (asc statics + stub heap) ----
export const FW_LOW_BASE: u32 = 0;
export const FW_LOW_SIZE: u32 = 0x100000;

// ---- firmware state ----
export const FW_STATE_BASE: u32 = 0x100000;
export const FW_STATE_SIZE: u32 = 0x100000;

// Limits that size the tables below.
export const MAX_GUESTS: u32 = 16;
export const MAX_DISKS: u32 = 16;
export const MAX_FUNCS: u32 = 16;
export const MAX_QUEUES: u32 = 32; // per function (NVMe: admin + 31 I/O pairs; virtio: 32 virtqueues)
export const MAX_VECTORS: u32 = 32; // MSI-X vectors per function

// Counters: u64 each, indexed by the Counter enum in counters.ts.
export const COUNTERS_BASE: u32 = FW_STATE_BASE;
export const COUNTERS_MAX: u32 = 512;
export const COUNTERS_SIZE: u32 = COUNTERS_MAX * 8;

// Global scalars (u32 each unless noted).
export const GLOBALS_BASE: u32 = COUNTERS_BASE + COUNTERS_SIZE;
export const G_MAGIC: u32 = GLOBALS_BASE + 0; // written by init() so the host can check the map
export const G_NOW: u32 = GLOBALS_BASE + 8; // f64 virtual time of the current poll (ns)
export const G_NFUNCS: u32 = GLOBALS_BASE + 16;
export const GLOBALS_SIZE: u32 = 256;
export const MEMMAP_MAGIC: u32 = 0x44505531; // "DPU1"

// Guest RAM windows: { base u32, size u32 } in card memory.
export const GUEST_TABLE_BASE: u32 = GLOBALS_BASE + GLOBALS_SIZE;
export const GUEST_ENTRY_SIZE: u32 = 16;
export const GUEST_BASE_OFF: u32 = 0;
export const GUEST_SIZE_OFF: u32 = 4;
export const GUEST_TABLE_SIZE: u32 = MAX_GUESTS * GUEST_ENTRY_SIZE;

// Disks (block devices the functions map to).
export const DISK_TABLE_BASE: u32 = GUEST_TABLE_BASE + GUEST_TABLE_SIZE;
export const DISK_ENTRY_SIZE: u32 = 32;
export const DISK_KIND_OFF: u32 = 0; // DiskKind (blk/disk.ts)
export const DISK_BLOCK_SHIFT_OFF: u32 = 4; // 9 or 12
export const DISK_BLOCKS_OFF: u32 = 8; // u64 block count
export const DISK_BASE_OFF: u32 = 16; // card offset of a RAM disk's bytes
export const DISK_TABLE_SIZE: u32 = MAX_DISKS * DISK_ENTRY_SIZE;

// PCIe functions.
export const FUNC_TABLE_BASE: u32 = DISK_TABLE_BASE + DISK_TABLE_SIZE;
export const FUNC_ENTRY_SIZE: u32 = 64;
export const FUNC_TYPE_OFF: u32 = 0; // FuncType (pcie/func.ts)
export const FUNC_GUEST_OFF: u32 = 4;
export const FUNC_DISK_OFF: u32 = 8;
export const FUNC_NQUEUES_OFF: u32 = 12;
export const FUNC_FEATURES_LO_OFF: u32 = 16; // negotiated virtio features, low 32 bits
export const FUNC_FEATURES_HI_OFF: u32 = 20;
export const FUNC_ENABLED_OFF: u32 = 24; // 1 when the driver has set DRIVER_OK / CC.EN
export const FUNC_PRIVATE_OFF: u32 = 32; // 32 bytes the front end owns
export const FUNC_TABLE_SIZE: u32 = MAX_FUNCS * FUNC_ENTRY_SIZE;

// Per-queue state; the layout inside an entry belongs to the front end (virtio/ or nvme/).
export const QUEUE_TABLE_BASE: u32 = FUNC_TABLE_BASE + FUNC_TABLE_SIZE;
export const QUEUE_ENTRY_SIZE: u32 = 128;
export const QUEUE_TABLE_SIZE: u32 = MAX_FUNCS * MAX_QUEUES * QUEUE_ENTRY_SIZE;

// Doorbell and polling bitmaps: one u32 per function, bit q = queue q.
// A doorbell write by the host only sets a bit here; poll() does the work (DESIGN rule 2).
export const DOORBELL_BASE: u32 = QUEUE_TABLE_BASE + QUEUE_TABLE_SIZE;
export const POLLING_BASE: u32 = DOORBELL_BASE + MAX_FUNCS * 4;
// Interrupts raised by the firmware: one u32 per function, bit v = MSI-X vector v.
// The host reads and clears it after each poll and delivers through the MSI-X table.
export const IRQ_OUT_BASE: u32 = POLLING_BASE + MAX_FUNCS * 4;
// Per-vector interrupt coalescing state: MAX_FUNCS * MAX_VECTORS entries.
export const IRQ_STATE_BASE: u32 = IRQ_OUT_BASE + MAX_FUNCS * 4;
export const IRQ_ENTRY_SIZE: u32 = 32;
export const IRQ_STATE_SIZE: u32 = MAX_FUNCS * MAX_VECTORS * IRQ_ENTRY_SIZE;
export const FW_STATE_END: u32 = IRQ_STATE_BASE + IRQ_STATE_SIZE;

// ---- BAR register files ----
export const BAR_BASE: u32 = 0x200000;
export const BAR_SIZE: u32 = 0x4000; // 16 KiB per function: registers, doorbells, MSI-X table, PBA
export const BAR_REGION_SIZE: u32 = MAX_FUNCS * BAR_SIZE;

// ---- card memory ----
export const CARD_MEM_BASE: u32 = 0x400000;
// Shadow rings: each queue's synced entries and descriptor chains, copied from guest RAM.
export const SHADOW_BASE: u32 = CARD_MEM_BASE;
export const SHADOW_QUEUE_SIZE: u32 = 0x8000; // 32 KiB per queue
export const SHADOW_SIZE: u32 = MAX_FUNCS * MAX_QUEUES * SHADOW_QUEUE_SIZE;
// Request pool: every request in flight, whatever its front end (blk/req.ts).
export const REQ_BASE: u32 = SHADOW_BASE + SHADOW_SIZE;
export const MAX_REQS: u32 = 4096;
export const REQ_SIZE: u32 = 640; // header + MAX_SEGS segments
export const MAX_SEGS: u32 = 72;
export const REQ_POOL_SIZE: u32 = MAX_REQS * REQ_SIZE;
// Host-IO ring: requests for backends the host serves (file, NBD, ...), u32 request index each.
// Head/tail are in HOSTIO_CTRL: [0] producer (firmware), [4] consumer (host).
export const HOSTIO_CTRL: u32 = REQ_BASE + REQ_POOL_SIZE;
export const HOSTIO_RING: u32 = HOSTIO_CTRL + 64;
export const HOSTIO_ENTRIES: u32 = MAX_REQS;
// Completed host IO handed back: same shape, producer = host, consumer = firmware.
export const HOSTIO_DONE_CTRL: u32 = HOSTIO_RING + HOSTIO_ENTRIES * 4;
export const HOSTIO_DONE_RING: u32 = HOSTIO_DONE_CTRL + 64;
// Scratch for the front ends (bounce buffers, copied headers): one page per function.
export const SCRATCH_BASE: u32 = HOSTIO_DONE_RING + HOSTIO_ENTRIES * 4;
export const SCRATCH_FUNC_SIZE: u32 = 0x2000;
// Ethernet frame rings between the card and the fabric (host/fabric/), moved in bulk once
// per poll. TX: firmware produces at [CTRL+0], host consumes at [CTRL+4]; RX: the reverse.
// Indexes are free-running u32; slot = idx % NET_RING_ENTRIES. A slot is
// { len u32, port u32, reserved u64 } then the frame (Ethernet header first, no FCS).
export const NET_RING_ENTRIES: u32 = 1024;
export const NET_SLOT_SIZE: u32 = 0x1200;
export const NET_SLOT_HDR: u32 = 16;
export const NET_SLOT_LEN_OFF: u32 = 0;
export const NET_SLOT_PORT_OFF: u32 = 4;
export const NET_FRAME_MAX: u32 = NET_SLOT_SIZE - NET_SLOT_HDR; // 4592: 4096-byte MTU payload + headers
export const NET_TX_CTRL: u32 = SCRATCH_BASE + MAX_FUNCS * SCRATCH_FUNC_SIZE;
export const NET_TX_SLOTS: u32 = NET_TX_CTRL + 64;
export const NET_RX_CTRL: u32 = NET_TX_SLOTS + NET_RING_ENTRIES * NET_SLOT_SIZE;
export const NET_RX_SLOTS: u32 = NET_RX_CTRL + 64;
// RoCEv2 wire layer (assembly/crc.ts, assembly/rdma/, assembly/net/).
// CRC tables, built once at start-up (crc.ts): slicing-by-16 for CRC-32 (ICRC) and
// CRC-32C (16 x 256 u32 each), slicing-by-16 for CRC-16 T10-DIF (16 x 256 u32, low 16 bits
// used), then SIMD nibble tables and zero-shift tables for combining streams.
export const CRC_TABLES_BASE: u32 = NET_RX_SLOTS + NET_RING_ENTRIES * NET_SLOT_SIZE;
export const CRC32_TABLE: u32 = CRC_TABLES_BASE;
export const CRC32C_TABLE: u32 = CRC32_TABLE + 0x4000;
export const CRC16_TABLE: u32 = CRC32C_TABLE + 0x4000;
export const CRC_AUX: u32 = CRC16_TABLE + 0x4000;
export const CRC_AUX_SIZE: u32 = 0x2000;
// RDMA receive/transmit control (rdma/rx.ts): u32 each; see rdma/wire.ts RC_* for the fields.
export const RDMA_CTRL: u32 = CRC_AUX + CRC_AUX_SIZE;
export const RDMA_CTRL_SIZE: u32 = 64;
// Scratch for masked ICRC headers and one TX descriptor the host can fill (rdma/wire.ts TXD_*).
export const RDMA_SCRATCH: u32 = RDMA_CTRL + RDMA_CTRL_SIZE;
export const RDMA_SCRATCH_SIZE: u32 = 448;
// Receive result log: one entry per frame taken from the RX ring (rdma/wire.ts RXL_*), a ring
// with its producer (firmware) at RDMA_CTRL + RC_LOG_PROD and consumer (host) at RC_LOG_CONS.
export const RXLOG_BASE: u32 = RDMA_SCRATCH + RDMA_SCRATCH_SIZE;
export const RXLOG_ENTRIES: u32 = 4096;
export const RXLOG_ENTRY_SIZE: u32 = 32;
// Queue pairs: per-QP connection and sequence state (rdma/seq.ts, rdma/qp.ts).
export const QP_TABLE_BASE: u32 = RXLOG_BASE + RXLOG_ENTRIES * RXLOG_ENTRY_SIZE;
export const MAX_QPS: u32 = 256;
export const QP_ENTRY_SIZE: u32 = 128;
// RDMA-CM (rdma/cm.ts, layouts in rdma/cm-wire.ts): control block, then the connection table.
export const CM_CTRL: u32 = QP_TABLE_BASE + MAX_QPS * QP_ENTRY_SIZE;
export const CM_CTRL_SIZE: u32 = 256;
export const CM_CONN_BASE: u32 = CM_CTRL + CM_CTRL_SIZE;
export const CM_MAX_CONNS: u32 = 64;
export const CM_CONN_SIZE: u32 = 512;
// RC transport (rdma/mr.ts, rdma/resp.ts, rdma/req.ts): the memory region table, then per QP
// a control block, a send queue, a receive queue and a completion queue (rdma/rcdefs.ts RCQ_*).
export const MR_TABLE_BASE: u32 = CM_CONN_BASE + CM_MAX_CONNS * CM_CONN_SIZE;
export const MAX_MRS: u32 = 256;
export const MR_ENTRY_SIZE: u32 = 32;
export const RCQ_BASE: u32 = MR_TABLE_BASE + MAX_MRS * MR_ENTRY_SIZE;
export const RCQ_SIZE: u32 = 0x8000; // 32 KiB per QP
// NVMe-oF host in the DPU (assembly/nvmeof/, layouts in nvmeof/defs.ts): per fabric queue a
// control entry, then per queue NVMF_DEPTH command capsule slots (SQE + in-capsule data) and
// NVMF_DEPTH response buffers; every slot is in one memory region the queue's QP sends from.
export const NVMF_BASE: u32 = RCQ_BASE + MAX_QPS * RCQ_SIZE;
export const NVMF_MAX_QUEUES: u32 = 16; // admin + I/O queues of every remote disk together
export const NVMF_DEPTH: u32 = 64; // capsules in flight per queue at most
export const NVMF_QUEUE_ENTRY_SIZE: u32 = 128;
export const NVMF_CAPSULE_SLOT: u32 = 0x1100; // 64-byte SQE + up to 4096 bytes of in-capsule data, 64 spare
export const NVMF_RESP_SLOT: u32 = 64; // 16-byte CQE, slot rounded to a cache line
export const NVMF_CAPSULES: u32 = NVMF_BASE + NVMF_MAX_QUEUES * NVMF_QUEUE_ENTRY_SIZE;
export const NVMF_RESPONSES: u32 = NVMF_CAPSULES + NVMF_MAX_QUEUES * NVMF_DEPTH * NVMF_CAPSULE_SLOT;
export const NVMF_END: u32 = NVMF_RESPONSES + NVMF_MAX_QUEUES * NVMF_DEPTH * NVMF_RESP_SLOT;
// Storage-side NIC (assembly/nic/, layouts in nic/defs.ts): per storage controller a control
// block, its send queue of NIC WQEs (controller → NIC), its command ring (NIC → controller) and
// its event ring (NIC → controller); then the receive buffers of the target QPs; then each
// controller's staging window (the only NIC memory its WQEs may name).
export const NIC_BASE: u32 = NVMF_END; // NIC globals (nic/defs.ts NG_*), 4 KiB
export const NIC_GLOBALS_SIZE: u32 = 0x1000;
export const NIC_CTRLS: u32 = NIC_BASE + NIC_GLOBALS_SIZE;
export const NIC_MAX_CTRLS: u32 = 8;
export const NIC_SQ_DEPTH: u32 = 1024; // NIC WQEs per controller send queue
export const NIC_CMD_DEPTH: u32 = 1024; // command ring entries per controller
export const NIC_EVT_DEPTH: u32 = 1024; // event ring entries per controller
export const NIC_CTRL_BLOCK: u32 = 256;
export const NIC_CTRL_SIZE: u32 = 0x20000; // control block + SQ (64 KiB) + command ring (32 KiB) + event ring (16 KiB), rounded
export const NIC_MAX_QPS: u32 = 32; // target QPs the NIC serves (admin + I/O connections)
export const NIC_RECV_DEPTH: u32 = 64; // receive buffers posted per target QP
export const NIC_RECV_SLOT: u32 = NVMF_CAPSULE_SLOT;
export const NIC_RECV_BASE: u32 = NIC_CTRLS + NIC_MAX_CTRLS * NIC_CTRL_SIZE;
export const NIC_STAGE_BASE: u32 = NIC_RECV_BASE + NIC_MAX_QPS * NIC_RECV_DEPTH * NIC_RECV_SLOT;
export const NIC_STAGE_SIZE: u32 = 0x100000; // 1 MiB staging window per controller
export const NIC_END: u32 = NIC_STAGE_BASE + NIC_MAX_CTRLS * NIC_STAGE_SIZE;
// Shared connectors (nic/connector.ts, layouts in nic/defs.ts CE_*): one entry per receive
// buffer (the command its capsule holds while in flight), the CQEs of the error responses the
// connector answers itself, and a zeroed packet that closes an open RDMA WRITE message.
export const NIC_CONN_BASE: u32 = NIC_END;
export const NIC_CONN_ENTRY: u32 = 32;
export const NIC_CONN_CQES: u32 = NIC_CONN_BASE + NIC_MAX_QPS * NIC_RECV_DEPTH * NIC_CONN_ENTRY; // 16 B per entry
export const NIC_CONN_PAD: u32 = NIC_CONN_CQES + NIC_MAX_QPS * NIC_RECV_DEPTH * 16; // 4 KiB of zeros
export const NIC_CONN_END: u32 = NIC_CONN_PAD + 0x1000;
export const CARD_FIXED_END: u32 = NIC_CONN_END;
// RAM disks and guest windows start at the first page boundary at or after CARD_FIXED_END.

// ---- firmware event trace (assembly/trace.ts; host/trace/ drains it), inside FW_STATE ----
// Off unless the host sets TRACE_FLAGS: then every guest range the firmware maps through
// dma.ts is recorded (TRACE_F_DMA), and every WQE the storage-side NIC fetches from a
// controller's send queue (TRACE_F_WQE); one flag load per event when off. Producer = firmware,
// consumer = host, free-running u32 indexes; slot = idx % TRACE_ENTRIES. A full ring drops
// the newest entry and counts it (Counter.trace_lost).
export const TRACE_CTRL: u32 = FW_STATE_END;
export const TRACE_FLAGS_OFF: u32 = 0; // TRACE_F_* bits: what to record
export const TRACE_PROD_OFF: u32 = 4;
export const TRACE_CONS_OFF: u32 = 8;
export const TRACE_F_DMA: u32 = 1;
export const TRACE_F_WQE: u32 = 2;
export const TRACE_RING: u32 = TRACE_CTRL + 64;
export const TRACE_ENTRIES: u32 = 4096;
// Entry: { kind u16, dir u16, guest u32, gpa u64, len u32, card offset u32 (0xffffffff when denied) };
// a WQE fetch (TraceKind.WQE_FETCH) reuses it: dir = NicWqeType, guest = controller, gpa = QPN << 16
// | CID, len = the WQE's send queue index, card = 0 when sent, else the Counter it was refused by.
export const TRACE_ENTRY_SIZE: u32 = 24;
export const TRACE_E_KIND: u32 = 0;
export const TRACE_E_DIR: u32 = 2;
export const TRACE_E_GUEST: u32 = 4;
export const TRACE_E_GPA: u32 = 8;
export const TRACE_E_LEN: u32 = 16;
export const TRACE_E_CARD: u32 = 20;
export const TRACE_END: u32 = TRACE_RING + TRACE_ENTRIES * TRACE_ENTRY_SIZE; // must stay <= FW_STATE_BASE + FW_STATE_SIZE

// ---- fuzz builds only (scripts/fuzz-transform.mjs, host/fuzz/) ----
// The edge-coverage map: one byte per instrumented edge, set to 1 when the edge runs.
// It takes the top of FW_LOW, far above asc's static data and the (unused) stub heap;
// release and debug builds never touch it. Literal values: the asc transform reads them.
export const FUZZ_COV_BASE: u32 = 0xf0000;
export const FUZZ_COV_SIZE: u32 = 0x10000;
// Dirty pages: the fuzz build marks every page (1 << FUZZ_DIRTY_SHIFT bytes) of card
// memory the firmware stores to, once: a byte in FUZZ_DIRTY_MAP, and the page number
// appended to FUZZ_DIRTY_LIST (word 0: how many were appended, possibly more than fit;
// then the page numbers). host/fuzz/card.ts restores just those pages between inputs and
// audits the ones outside the writable ranges, instead of copying and comparing every
// range whole. Pages above the map's reach all count as its last page.
export const FUZZ_DIRTY_SHIFT: u32 = 10;
export const FUZZ_DIRTY_MAP: u32 = 0xe0000;
export const FUZZ_DIRTY_MAP_SIZE: u32 = 0x10000; // one byte per page: 64 MiB of card memory
export const FUZZ_DIRTY_LIST: u32 = 0xd0000;
export const FUZZ_DIRTY_LIST_SIZE: u32 = 0x10000;
// __fuzz_hits(bytes) lists the edges hit (as ids, u32 each) here and clears them from the
// map: the host then reads a few hundred ids, not the whole map.
export const FUZZ_HITS: u32 = 0xc0000;
export const FUZZ_HITS_SIZE: u32 = 0x10000;
