// NVMe wire formats the firmware parses and writes (NVMe base 2.0, NVM command set 1.0).
// Constants only; offsets are in bytes.

// ---- Submission Queue Entry, 64 bytes (base §4.2, Figure 88) ----
export const SQE_SIZE: u32 = 64;
export const SQE_SHIFT: u32 = 6;
export const SQE_CDW0: u32 = 0; // opcode [7:0], FUSE [9:8], PSDT [15:14], CID [31:16]
export const SQE_NSID: u32 = 4;
export const SQE_PRP1: u32 = 24; // DPTR
export const SQE_PRP2: u32 = 32;
export const SQE_CDW10: u32 = 40;
export const SQE_CDW11: u32 = 44;
export const SQE_CDW12: u32 = 48;
export const CDW0_OPC_MASK: u32 = 0xff;
export const SQE_CID: u32 = 2; // u16: CID is CDW0 [31:16]
export const CDW0_FUSE_SHIFT: u32 = 8;
export const CDW0_FUSE_MASK: u32 = 3;
export const CDW0_PSDT_SHIFT: u32 = 14;
export const CDW0_PSDT_MASK: u32 = 3;
export const CDW0_CID_SHIFT: u32 = 16;

// ---- Completion Queue Entry, 16 bytes (base §4.6, Figure 90) ----
export const CQE_SIZE: u32 = 16;
export const CQE_SHIFT: u32 = 4;
export const CQE_DW0: u32 = 0;
export const CQE_DW1: u32 = 4;
export const CQE_DW2: u32 = 8; // SQHD [15:0], SQID [31:16]
export const CQE_DW3: u32 = 12; // CID [15:0], P [16], status [31:17]
export const CQE_SQID_SHIFT: u32 = 16;
export const CQE_PHASE_SHIFT: u32 = 16;
export const CQE_STATUS_SHIFT: u32 = 17;

// ---- Status field, 15 bits as placed at CQE DW3 [31:17] (base §4.6.1, Figure 93):
//      SC [7:0], SCT [10:8], CRD [12:11], M [13], DNR [14] ----
export const ST_SCT_SHIFT: u32 = 8;
export const ST_DNR: u32 = 1 << 14;
export const SCT_GENERIC: u32 = 0 << ST_SCT_SHIFT;
export const SCT_CMD_SPECIFIC: u32 = 1 << ST_SCT_SHIFT;
export const SCT_MEDIA: u32 = 2 << ST_SCT_SHIFT;

export const S_SUCCESS: u32 = 0;
// Generic command status (base §4.6.1.2.1, Figure 94; NVM cmd set Figure 18 for 80h)
export const S_INVALID_OPCODE: u32 = SCT_GENERIC | 0x01 | ST_DNR;
export const S_INVALID_FIELD: u32 = SCT_GENERIC | 0x02 | ST_DNR;
export const S_DATA_TRANSFER_ERROR: u32 = SCT_GENERIC | 0x04 | ST_DNR;
export const S_INTERNAL_ERROR: u32 = SCT_GENERIC | 0x06;
export const S_INVALID_NAMESPACE: u32 = SCT_GENERIC | 0x0b | ST_DNR;
export const S_PRP_OFFSET_INVALID: u32 = SCT_GENERIC | 0x13 | ST_DNR;
export const S_LBA_OUT_OF_RANGE: u32 = SCT_GENERIC | 0x80 | ST_DNR;
// Command specific status (base §5, Figures 150/154/...)
export const S_CQ_INVALID: u32 = SCT_CMD_SPECIFIC | 0x00 | ST_DNR;
export const S_INVALID_QID: u32 = SCT_CMD_SPECIFIC | 0x01 | ST_DNR;
export const S_INVALID_QSIZE: u32 = SCT_CMD_SPECIFIC | 0x02 | ST_DNR;
export const S_INVALID_VECTOR: u32 = SCT_CMD_SPECIFIC | 0x08 | ST_DNR;
export const S_INVALID_QUEUE_DELETION: u32 = SCT_CMD_SPECIFIC | 0x0c | ST_DNR;
// Media and data integrity errors (base Figure 97)
export const S_WRITE_FAULT: u32 = SCT_MEDIA | 0x80;
export const S_UNRECOVERED_READ: u32 = SCT_MEDIA | 0x81;

// ---- Admin opcodes (base §5, Figure 139) ----
export const ADM_DELETE_SQ: u32 = 0x00;
export const ADM_CREATE_SQ: u32 = 0x01;
export const ADM_DELETE_CQ: u32 = 0x04;
export const ADM_CREATE_CQ: u32 = 0x05;
export const ADM_IDENTIFY: u32 = 0x06;
export const ADM_SET_FEATURES: u32 = 0x09;
export const ADM_GET_FEATURES: u32 = 0x0a;
export const ADM_DBBUF_CONFIG: u32 = 0x7c;

// ---- NVM I/O opcodes (NVM command set §3, Figure 14) ----
export const IO_FLUSH: u32 = 0x00;
export const IO_WRITE: u32 = 0x01;
export const IO_READ: u32 = 0x02;
export const IO_WRITE_ZEROES: u32 = 0x08;
export const IO_DSM: u32 = 0x09;

// ---- Create I/O CQ / SQ (base §5.4, §5.5) ----
export const CDW10_QID_MASK: u32 = 0xffff;
export const CDW10_QSIZE_SHIFT: u32 = 16; // 0's based
export const CDW11_PC: u32 = 1; // physically contiguous
export const CQ_CDW11_IEN: u32 = 1 << 1;
export const CQ_CDW11_IV_SHIFT: u32 = 16;
export const SQ_CDW11_CQID_SHIFT: u32 = 16;

// ---- Identify (base §5.17) ----
export const CNS_MASK: u32 = 0xff; // CDW10 [7:0]
export const CNS_NAMESPACE: u32 = 0x00;
export const CNS_CONTROLLER: u32 = 0x01;
export const CNS_ACTIVE_NS_LIST: u32 = 0x02;
export const IDENTIFY_SIZE: u32 = 4096;
// Identify Controller data structure (base Figure 275)
export const IDC_VID: u32 = 0;
export const IDC_SSVID: u32 = 2;
export const IDC_SN: u32 = 4; // 20 ASCII bytes, space padded
export const IDC_SN_LEN: u32 = 20;
export const IDC_MN: u32 = 24; // 40 ASCII bytes
export const IDC_MN_LEN: u32 = 40;
export const IDC_FR: u32 = 64; // 8 ASCII bytes
export const IDC_FR_LEN: u32 = 8;
export const ASCII_SPACE: u8 = 0x20; // identify strings are space padded (base §1.5)
export const ASCII_ZERO: u32 = 0x30;
export const IDC_MDTS: u32 = 77;
export const IDC_CNTLID: u32 = 78;
export const IDC_VER: u32 = 80;
export const IDC_CNTRLTYPE: u32 = 111; // 1 = I/O controller
export const IDC_OACS: u32 = 256; // bit 8: Doorbell Buffer Config
export const IDC_SQES: u32 = 512; // max [7:4], required [3:0]
export const IDC_CQES: u32 = 513;
export const IDC_MAXCMD: u32 = 514;
export const IDC_NN: u32 = 516;
export const IDC_ONCS: u32 = 520; // bit 2 DSM, bit 3 Write Zeroes
export const IDC_VWC: u32 = 525; // bit 0 present, bits 2:1 = 11b flush with NSID FFFFFFFFh
export const IDC_SGLS: u32 = 536; // 0: SGLs not supported
export const OACS_DBBUF: u32 = 1 << 8;
export const ONCS_DSM: u32 = 1 << 2;
export const ONCS_WRITE_ZEROES: u32 = 1 << 3;
export const VWC_PRESENT_FLUSH_ALL: u32 = 0x7;
export const CNTRLTYPE_IO: u32 = 1;
// Identify Namespace data structure (NVM cmd set Figure 97)
export const IDN_NSZE: u32 = 0;
export const IDN_NCAP: u32 = 8;
export const IDN_NUSE: u32 = 16;
export const IDN_NLBAF: u32 = 25; // 0's based
export const IDN_FLBAS: u32 = 26;
export const IDN_DLFEAT: u32 = 33; // bits 2:0 = 001b: deallocated blocks read as zeroes
export const IDN_LBAF0: u32 = 128; // MS [15:0], LBADS [23:16], RP [25:24]
export const LBAF_LBADS_SHIFT: u32 = 16;
export const DLFEAT_READS_ZERO: u32 = 1;

// ---- Features (base §5.27.1) ----
export const FID_VOLATILE_WRITE_CACHE: u32 = 0x06;
export const FID_NUMBER_OF_QUEUES: u32 = 0x07;
export const FID_INTERRUPT_COALESCING: u32 = 0x08;
export const FEAT_FID_MASK: u32 = 0xff;
export const NQ_MASK: u32 = 0xffff; // NSQR [15:0], NCQR [31:16], 0's based
export const NQ_NCQ_SHIFT: u32 = 16;
export const NQ_UNLIMITED_REQ: u32 = 0xffff; // 0xFFFF is an invalid request (Figure 322)
export const COAL_THR_MASK: u32 = 0xff; // 0's based aggregation threshold
export const COAL_TIME_SHIFT: u32 = 8; // aggregation time in 100 µs units
export const COAL_TIME_MASK: u32 = 0xff;
export const COAL_FEATURE_MASK: u32 = 0xffff;
export const COAL_TIME_UNIT_NS: u32 = 100000;

// ---- Namespaces: one namespace, NSID 1 ----
export const NSID_ONE: u32 = 1;
export const NSID_BROADCAST: u32 = 0xffffffff;
export const NSID_FIRST_INVALID_LIST: u32 = 0xfffffffe; // CNS 02h: FFFFFFFEh and FFFFFFFFh are invalid

// ---- Write Zeroes / Read / Write (NVM cmd set §3.2) ----
export const CDW12_NLB_MASK: u32 = 0xffff; // 0's based
// ---- Dataset Management (NVM cmd set §3.2.3) ----
export const DSM_NR_MASK: u32 = 0xff; // CDW10, 0's based number of ranges
export const DSM_AD: u32 = 1 << 2; // CDW11 attribute: deallocate
export const DSM_RANGE_SIZE: u32 = 16; // context u32, NLB u32 (1's based), SLBA u64
export const DSM_RANGE_NLB: u32 = 4;
export const DSM_RANGE_SLBA: u32 = 8;
