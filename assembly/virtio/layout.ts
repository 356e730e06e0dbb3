// virtio wire constants and the virtio front end's card-memory layouts (per-queue
// state, shadow ring). Constants only: compiled by asc (firmware) and by tsc (host
// device model, guest driver, the plain-TS sync reference), so both sides agree.
import { SHADOW_QUEUE_SIZE } from "../memmap";

// ---- virtio 1.2 §6: feature bits ----
export const F_BLK_SIZE_MAX: u32 = 1; // virtio 1.2 §5.2.3 (not offered)
export const F_BLK_SEG_MAX: u32 = 2;
export const F_BLK_BLK_SIZE: u32 = 6;
export const F_BLK_FLUSH: u32 = 9;
export const F_BLK_MQ: u32 = 12;
export const F_BLK_DISCARD: u32 = 13;
export const F_BLK_WRITE_ZEROES: u32 = 14;
export const F_RING_INDIRECT_DESC: u32 = 28; // virtio 1.2 §6
export const F_RING_EVENT_IDX: u32 = 29;
export const F_VERSION_1: u32 = 32;
export const F_RING_PACKED: u32 = 34;

// ---- virtio 1.2 §2.7.5: split-ring descriptor (16 bytes) ----
export const DESC_SIZE: u32 = 16;
export const DESC_SHIFT: u32 = 4; // log2(DESC_SIZE): index → byte offset (split and packed alike)
export const DESC_ADDR: u32 = 0; // u64
export const DESC_LEN: u32 = 8; // u32
export const DESC_FLAGS: u32 = 12; // u16
export const DESC_NEXT: u32 = 14; // u16 (split) / buffer id at 12 in packed, see below
export const DESCF_NEXT: u32 = 1;
export const DESCF_WRITE: u32 = 2;
export const DESCF_INDIRECT: u32 = 4;

// ---- virtio 1.2 §2.7.6 / §2.7.8: split avail and used rings ----
export const AVAIL_FLAGS: u32 = 0; // u16
export const AVAIL_IDX: u32 = 2; // u16
export const AVAIL_RING: u32 = 4; // u16[qsize], then used_event u16
export const AVAIL_F_NO_INTERRUPT: u32 = 1;
export const USED_FLAGS: u32 = 0;
export const USED_IDX: u32 = 2;
export const USED_RING: u32 = 4; // {id u32, len u32}[qsize], then avail_event u16
export const USED_ELEM_SIZE: u32 = 8;
export const USED_F_NO_NOTIFY: u32 = 1;

// ---- virtio 1.2 §2.8: packed ring descriptor (16 bytes) ----
export const PDESC_ADDR: u32 = 0; // u64
export const PDESC_LEN: u32 = 8; // u32
export const PDESC_ID: u32 = 12; // u16
export const PDESC_FLAGS: u32 = 14; // u16
export const PDESCF_AVAIL: u32 = 1 << 7; // virtio 1.2 §2.8.1
export const PDESCF_USED: u32 = 1 << 15;
// virtio 1.2 §2.8.10: event suppression structure {off_wrap u16, flags u16}
export const PEVENT_OFF_WRAP: u32 = 0;
export const PEVENT_FLAGS: u32 = 2;
export const PEVENT_ENABLE: u32 = 0;
export const PEVENT_DISABLE: u32 = 1;
export const PEVENT_DESC: u32 = 2;
export const PEVENT_WRAP_BIT: u32 = 15;
export const PEVENT_OFF_MASK: u32 = 0x7fff; // off_wrap bits [14:0]: descriptor ring position
export const IDX_MASK: u32 = 0xffff; // split-ring indexes are free-running u16 (§2.7)
// While polling, avail_event is put half the u16 index space away: vring_need_event never trips.
export const POLL_EVENT_DISTANCE: u32 = 0x8000;

// ---- virtio 1.2 §5.2.6: virtio-blk request ----
export const BLK_HDR_SIZE: u32 = 16; // {type u32, reserved u32, sector u64}
export const BLK_HDR_TYPE: u32 = 0;
export const BLK_HDR_SECTOR: u32 = 8;
export const BLK_T_IN: u32 = 0;
export const BLK_T_OUT: u32 = 1;
export const BLK_T_FLUSH: u32 = 4;
export const BLK_T_GET_ID: u32 = 8;
export const BLK_T_DISCARD: u32 = 11;
export const BLK_T_WRITE_ZEROES: u32 = 13;
export const BLK_S_OK: u32 = 0;
export const BLK_S_IOERR: u32 = 1;
export const BLK_S_UNSUPP: u32 = 2;
export const BLK_ID_BYTES: u32 = 20; // VIRTIO_BLK_ID_BYTES
export const SECTOR_SHIFT: u32 = 9; // `sector` is always in 512-byte units
// §5.2.6: discard / write-zeroes segment {sector u64, num_sectors u32, flags u32}
export const DWZ_SEG_SIZE: u32 = 16;
export const DWZ_SECTOR: u32 = 0;
export const DWZ_NUM: u32 = 8;
export const DWZ_FLAGS: u32 = 12;
export const DWZ_F_UNMAP: u32 = 1;

// ---- limits this device offers (device config, virtio 1.2 §5.2.4) ----
export const SEG_MAX: u32 = 64; // data descriptors per request (MAX_SEGS in blk/req.ts is 72)
export const MAX_CHAIN: u32 = SEG_MAX + 2; // header + data + status
// A chain past MAX_CHAIN is an error either way; the probe that names it (loop or too long)
// is bounded, so a hostile ring costs O(MAX_CHAIN) per chain, not O(queue size).
export const LONG_CHAIN_PROBE: u32 = 4 * MAX_CHAIN;
export const MAX_QSIZE: u32 = 32768; // virtio 1.2 §2.7 / §2.8: Queue Size at most 32768
export const MAX_DESC_LEN: u32 = 0x400000; // 4 MiB: longer descriptors are refused as oversized
export const MAX_XFER: u32 = 0x400000; // 4 MiB per request
export const MAX_DISCARD_SECTORS: u32 = 0x2000000;
export const NO_VECTOR: u32 = 0xffff; // VIRTIO_MSI_NO_VECTOR, virtio 1.2 §4.1.5.1.2

// ---- per-queue state (QUEUE_ENTRY_SIZE = 128 bytes at queueAddr(f, q)) ----
export const QS_DISABLED: u32 = 0; // QueueState: reset, or never enabled
export const QS_READY: u32 = 1; // enabled by the driver, rings window-checked
export const QS_BROKEN: u32 = 2; // the driver broke the ring protocol: needs a device reset
export const Q_STATE: u32 = 0;
export const Q_SIZE: u32 = 4;
export const Q_DESC: u32 = 8; // card offset of the descriptor table (split) / ring (packed)
export const Q_DRIVER: u32 = 12; // card offset of the avail ring / driver event suppression
export const Q_DEVICE: u32 = 16; // card offset of the used ring / device event suppression
export const Q_VECTOR: u32 = 20; // MSI-X vector or NO_VECTOR
export const Q_MODE: u32 = 24; // QM_* bits
export const Q_LAST_AVAIL: u32 = 28; // split: free-running u16 index; packed: ring position
export const Q_AVAIL_WRAP: u32 = 32; // packed driver wrap counter (1 after reset)
export const Q_USED_IDX: u32 = 36; // split: free-running u16 next used index; packed: position
export const Q_USED_WRAP: u32 = 40; // packed device wrap counter
export const Q_USED_PUB: u32 = 44; // used index / position at the last interrupt decision
export const Q_PENDING: u32 = 48; // used elements written since then
export const Q_IN_SERVICE: u32 = 52; // 1 while virtioServiceQueue runs
export const QM_PACKED: u32 = 1;
export const QM_EVENT_IDX: u32 = 2;
export const QM_INDIRECT: u32 = 4;

// ---- shadow ring (SHADOW_QUEUE_SIZE = 32 KiB at shadowAddr(f, q)) ----
// One batch of synced chains: a header, chain records, then the chains' descriptors
// flattened (indirect tables expanded) into {addr u64, len u32, flags u32}.
export const SH_NCHAINS: u32 = 0;
export const SH_NDESC: u32 = 4;
export const SH_CHAINS: u32 = 64;
export const SH_CHAIN_SIZE: u32 = 16;
export const SHC_ID: u32 = 0; // u32: head index / buffer id, SHC_NO_ID when there is none to complete
export const SHC_ERR: u32 = 4; // u32: Counter of the first defect, 0 when the chain is sound
export const SHC_FIRST: u32 = 8; // u16: first descriptor in the descriptor area
export const SHC_NDESC: u32 = 10; // u16: descriptors stored
export const SHC_RING_N: u32 = 12; // u32: ring slots the chain used (packed: used position step)
export const SHC_NO_ID: u32 = 0xffffffff;
export const SH_BATCH_MAX: u32 = 64;
export const SH_DESCS: u32 = 2048;
export const SH_DESC_SIZE: u32 = 16;
export const SHD_ADDR: u32 = 0; // u64 guest address, as the driver wrote it
export const SHD_LEN: u32 = 8; // u32
export const SHD_FLAGS: u32 = 12; // u32: DESCF_WRITE or 0
export const SEG_OFF: u32 = 0; // segment list entry {card offset u32, len u32} (blk/req.ts R_SEGS)
export const SEG_LEN: u32 = 4;
export const USED_ELEM_ID: u32 = 0; // §2.7.8 used element {id u32, len u32}
export const USED_ELEM_LEN: u32 = 4;
export const SH_DESC_CAP: u32 = (SHADOW_QUEUE_SIZE - SH_DESCS) / SH_DESC_SIZE; // 1920
export const SYNC_BATCH: u32 = 32; // chains per sync call in service
