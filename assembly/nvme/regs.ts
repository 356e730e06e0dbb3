// NVMe controller registers and BAR0 layout (NVMe base 2.0 §3.1.4). Constants only:
// compiled by asc (firmware) and by tsc (host/pcie/nvme-pci.ts, host/guest/nvme.ts).

// ---- controller properties, offsets in BAR0 (§3.1.4, Figure 35) ----
export const NVME_REG_CAP: u32 = 0x00; // u64 Controller Capabilities
export const NVME_REG_VS: u32 = 0x08; // Version
export const NVME_REG_INTMS: u32 = 0x0c; // Interrupt Mask Set
export const NVME_REG_INTMC: u32 = 0x10; // Interrupt Mask Clear
export const NVME_REG_CC: u32 = 0x14; // Controller Configuration
export const NVME_REG_CSTS: u32 = 0x1c; // Controller Status
export const NVME_REG_AQA: u32 = 0x24; // Admin Queue Attributes
export const NVME_REG_ASQ: u32 = 0x28; // u64 Admin SQ base
export const NVME_REG_ACQ: u32 = 0x30; // u64 Admin CQ base
export const NVME_REG_END: u32 = 0x38;

// ---- doorbells (§3.1.4.22/23): SQ y tail at DB + 2y*stride, CQ y head at DB + (2y+1)*stride ----
export const NVME_DB_BASE: u32 = 0x1000;
export const NVME_DSTRD: u32 = 0; // CAP.DSTRD: stride = 4 << DSTRD bytes
export const NVME_DB_STRIDE: u32 = 4 << NVME_DSTRD;
export const NVME_DB_VALUE_MASK: u32 = 0xffff; // doorbell values are 16-bit queue indexes

// ---- MSI-X table and PBA in BAR0, above the doorbells (PCI 3.0 §6.8.2) ----
export const NVME_MSIX_TABLE_OFF: u32 = 0x2000;
export const NVME_MSIX_PBA_OFF: u32 = 0x3000;

// ---- CAP fields (§3.1.4.1) ----
export const NVME_MQES: u32 = 511; // max queue entries, 0's based: 512 SQEs = one 32 KiB shadow ring
export const NVME_CAP_CQR: u32 = 1 << 16; // contiguous queues required
export const NVME_CAP_TO: u32 = 20; // ready timeout, 500 ms units (bits 31:24)
export const NVME_CAP_TO_SHIFT: u32 = 24;
export const NVME_CAP_HI_CSS_NVM: u32 = 1 << (37 - 32); // CSS bit 37: NVM command set
export const NVME_CAP_HI_MPSMIN_SHIFT: u32 = 48 - 32; // page size 2^(12+MPSMIN)
export const NVME_CAP_HI_MPSMAX_SHIFT: u32 = 52 - 32;

export const NVME_VS_2_0: u32 = 0x00020000; // §3.1.4.2: MJR 2, MNR 0, TER 0

// ---- CC fields (§3.1.4.5) ----
export const NVME_CC_EN: u32 = 1;
export const NVME_CC_CSS_MASK: u32 = 7;
export const NVME_CC_MPS_MASK: u32 = 0xf;
export const NVME_CC_AMS_MASK: u32 = 7;
export const NVME_CC_QES_MASK: u32 = 0xf;
export const NVME_CC_CSS_SHIFT: u32 = 4; // 3 bits, 000b = NVM
export const NVME_CC_MPS_SHIFT: u32 = 7; // 4 bits, page size 2^(12+MPS)
export const NVME_CC_AMS_SHIFT: u32 = 11; // 3 bits, 000b = round robin
export const NVME_CC_SHN_SHIFT: u32 = 14; // 2 bits, 01b normal, 10b abrupt shutdown
export const NVME_CC_IOSQES_SHIFT: u32 = 16; // 4 bits, log2 SQE size
export const NVME_CC_IOCQES_SHIFT: u32 = 20; // 4 bits, log2 CQE size
export const NVME_SQES_LOG2: u32 = 6; // 64-byte SQE
export const NVME_CQES_LOG2: u32 = 4; // 16-byte CQE

// ---- CSTS fields (§3.1.4.6) ----
export const NVME_CSTS_RDY: u32 = 1;
export const NVME_CSTS_CFS: u32 = 1 << 1;
export const NVME_CSTS_SHST_SHIFT: u32 = 2; // 00b normal, 01b occurring, 10b complete
export const NVME_SHST_COMPLETE: u32 = 2;

// ---- AQA fields (§3.1.4.8) ----
export const NVME_AQA_ASQS_MASK: u32 = 0xfff; // 0's based
export const NVME_AQA_ACQS_SHIFT: u32 = 16;

// ---- memory page size: MPSMIN = MPSMAX = 0 → 4 KiB only ----
export const NVME_PAGE_SHIFT: u32 = 12;
export const NVME_PAGE: u32 = 1 << NVME_PAGE_SHIFT;

// ---- MDTS (Identify Controller byte 77): 2^MDTS pages = 256 KiB, 65 segments worst case ≤ MAX_SEGS ----
export const NVME_MDTS: u32 = 6;
export const NVME_MAX_XFER: u32 = NVME_PAGE << NVME_MDTS;

// ---- identity of the emulated controller ----
export const NVME_VENDOR_ID: u32 = 0x4457; // "DW": experimental IDs chosen for wasm-dpu, not assigned by PCI-SIG
export const NVME_DEVICE_ID: u32 = 0x4e56; // "NV"
export const NVME_CLASS_CODE: u32 = 0x010802; // mass storage / NVM / NVMe I/O controller
