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
