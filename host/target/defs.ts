// NVMe facts the storage controllers need beyond the shared constants (assembly/nvme/spec.ts,
// regs.ts, nvmeof/defs.ts): constants only, the spec section beside each group.
import { ST_DNR, SCT_GENERIC } from "../../assembly/nvme/spec.js";
import * as M from "../../assembly/memmap.js";

// ---- Generic command status (NVMe base 2.0 §4.6.1.2.1, Figure 102), as the 15-bit status field ----
export const S_CMD_SEQUENCE_ERROR: u32 = SCT_GENERIC | 0x0c | ST_DNR; // Command Sequence Error
export const S_INVALID_SGL_SEGMENT: u32 = SCT_GENERIC | 0x0d | ST_DNR; // Invalid SGL Segment Descriptor
export const S_DATA_SGL_LENGTH_INVALID: u32 = SCT_GENERIC | 0x0f | ST_DNR; // Data SGL Length Invalid
export const S_SGL_TYPE_INVALID: u32 = SCT_GENERIC | 0x11 | ST_DNR; // SGL Descriptor Type Invalid
export const S_SGL_OFFSET_INVALID: u32 = SCT_GENERIC | 0x16 | ST_DNR; // SGL Offset Invalid

// ---- Connect response (NVMe-oF 1.1 §3.3, Figure 21): Invalid Parameters names the field ----
// DW0 = IATTR [16] (1: in the Connect data, 0: in the SQE) | IPO [15:0] (byte offset). As Linux nvmet.
export const CONNECT_IATTR_DATA = 1 << 16;
export const CATTR_SQFC_DISABLE = 1 << 2; // SQ flow control disabled: SQHD reported as FFFFh

// ---- Admin opcodes not in spec.ts (base §5, Figure 139) ----
export const ADM_GET_LOG_PAGE = 0x02;
export const ADM_ASYNC_EVENT = 0x0c;
export const ADM_KEEP_ALIVE = 0x18;
// Features (base §5.27.1, Figure 317)
export const FID_ASYNC_EVENT_CONFIG = 0x0b;
export const FID_KEEP_ALIVE_TIMER = 0x0f;
export const GET_FEAT_SEL_SHIFT = 8; // CDW10 [10:8] select: 0 current, 1 default, 2 saved, 3 capabilities

// ---- Identify Controller fields for fabrics (base Figure 275; NVMe-oF 1.1 §4.1) ----
export const IDC_CMIC = 76;
export const IDC_KAS = 320; // u16, keep alive granularity in 100 ms units
export const IDC_SUBNQN = 768; // 256 bytes
export const IDC_IOCCSZ = 1792; // u32, I/O command capsule size in 16-byte units
export const IDC_IORCSZ = 1796; // u32, I/O response capsule size in 16-byte units
export const IDC_ICDOFF = 1800; // u16, in-capsule data offset in 16-byte units (0: right after the SQE)
export const IDC_FCATT = 1802; // u8, 0 = dynamic controller model
export const IDC_MSDBD = 1803; // u8, max SGL data block descriptors per capsule
// SGLS bits (base Figure 275, byte 536)
export const SGLS_SUPPORTED = 1 << 0; // SGLs supported, no alignment requirement
export const SGLS_KEYED = 1 << 2; // Keyed SGL Data Block descriptor
export const SGLS_OFFSET = 1 << 20; // Offset in Data Block descriptors (in-capsule data)

// ---- Identify Namespace fields (NVM command set 1.0 Figure 97) ----
export const IDN_NSFEAT = 24;
export const IDN_MC = 27; // metadata capabilities: bit 0 extended LBA
export const IDN_DPC = 28; // end-to-end protection capabilities: bit 0 Type 1
export const IDN_DPS = 29; // protection settings: [2:0] type
export const MC_EXTENDED = 1;
export const DPC_TYPE1 = 1;
export const DPS_TYPE1 = 1;
export const FLBAS_EXTENDED = 1 << 4; // metadata at the end of each LBA's data
export const LBAF_MS_MASK = 0xffff;

// ---- Read / Write (NVM command set §3.2.4, §3.2.6) ----
export const CDW10_SLBA_LO = 40; // SLBA u64 in CDW10..11
export const SQE_CDW13 = 52;
export const NLB_MASK = 0xffff;

// ---- this target's limits ----
/** MDTS 5 (128 KiB in 4 KiB pages): a transfer's packets at MTU 256 and its response fit a NIC send queue. */
export const MDTS = 5;
export const MAX_XFER = 4096 << MDTS;
/** Entries of any queue at most (CAP.MQES + 1): the NIC posts NIC_RECV_DEPTH receive buffers per target QP. */
export const QUEUE_ENTRIES = M.NIC_RECV_DEPTH;
