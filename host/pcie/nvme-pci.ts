// NVMe device model: the PCIe function's config space, its controller registers in
// the BAR0 register file (NVMe base 2.0 §3.1.4), doorbells and MSI-X.
// Register writes that change controller state (CC.EN, CC.SHN) call the firmware
// once; a doorbell write only stores the value where the firmware reads it and sets
// the queue's doorbell bit — the firmware does the work in its next poll (DESIGN rule 2).
//
// BAR0 (16 KiB):  0x0000 registers  |  0x1000 doorbells (DSTRD 0)  |  0x2000 MSI-X table  |  0x3000 PBA
// PCI IDs: vendor 0x4457, device 0x4E56 (experimental, chosen for wasm-dpu), class 0x010802.
import * as M from "../../assembly/memmap.js";
import * as R from "../../assembly/nvme/regs.js";
import { Card, FuncType } from "../card.js";
import type { GuestRam } from "../guest/ram.js";
import { PciConfig, PCI_CAP_ID_PCIE } from "./config.js";
import { Msix } from "./msix.js";

/** PCI Express Capability, version 2, endpoint (PCIe base 4.0 §7.5.3). */
const PCIE_CAP_VERSION = 2;
const PCIE_CAP_BODY = 0x3c - 2; // through Link Status 2 minus the id/next bytes
const PCIE_DEVCAP_MPS_256 = 1; // Max_Payload_Size supported: 256 bytes
const PCIE_LINK_8GT_X4 = (4 << 4) | 3; // link width x4, speed 8 GT/s
const PCIE_OFF_DEVCAP = 2; // offsets inside the body (cap offset + 2)
const PCIE_OFF_LINKCAP = 10;
const PCIE_OFF_LINKSTA = 16;

const SHN_MASK = 3;
const CC_WRITABLE = 0x00fffff1; // EN, CSS, MPS, AMS, SHN, IOSQES, IOCQES (§3.1.4.5)
const AQA_WRITABLE = 0x0fff0fff;
const QBASE_LOW_WRITABLE = 0xfffff000; // ASQ/ACQ: 4 KiB aligned (§3.1.4.9)
const DOORBELLS_END = R.NVME_DB_BASE + 2 * M.MAX_QUEUES * R.NVME_DB_STRIDE;
const MSIX_VECTORS = M.MAX_VECTORS;

/**
 * Controller state as the registers show it (§3.5, §3.6), one transition function:
 *   DISABLED ──CC.EN 0→1──▶ READY (CSTS.RDY) | FATAL (CSTS.CFS)
 *   READY ──CC.SHN──▶ SHUT_DOWN (CSTS.SHST = 10b)      any ──CC.EN 1→0──▶ DISABLED
 */
export enum CtrlState { DISABLED, READY, FATAL, SHUT_DOWN }

export interface NvmePciOptions {
  /** Index of the guest (VM) whose RAM the controller reaches, and of the card's disk it serves. */
  guest: number;
  disk: number;
  /** I/O queue pairs the function provides (plus the admin pair). */
  ioQueues: number;
  /** Subsystem id in config space (default 0). */
  subsys?: number;
}

export class NvmePci {
  readonly config: PciConfig;
  readonly msix: Msix;
  readonly bar: number;
  state = CtrlState.DISABLED;
  /** Doorbell MMIO writes seen (tests and benchmarks). */
  doorbellWrites = 0;
  private readonly dv: DataView;

  readonly func: number;
  readonly guest: GuestRam;

  /** Adds an NVMe function to the card for guest o.guest on disk o.disk, and models it. */
  constructor(readonly card: Card, o: NvmePciOptions) {
    this.func = card.addFunction(FuncType.NVME, o.guest, o.disk, o.ioQueues + 1);
    this.guest = card.guests[o.guest]!;
    this.dv = card.dv;
    this.bar = card.barBase(this.func);
    this.config = new PciConfig({ vendor: R.NVME_VENDOR_ID, device: R.NVME_DEVICE_ID, classCode: R.NVME_CLASS_CODE,
      revision: 0, subsysVendor: R.NVME_VENDOR_ID, subsys: o.subsys ?? 0 }, M.BAR_SIZE);
    this.config.addCapability(PCI_CAP_ID_PCIE, pcieCapBody());
    card.u8.fill(0, this.bar, this.bar + M.BAR_SIZE);
    this.msix = new Msix(this.config, card.u8, card.dv, this.bar, MSIX_VECTORS, R.NVME_MSIX_TABLE_OFF, R.NVME_MSIX_PBA_OFF, this.guest);
    card.onIrq(this.func, (bits) => this.msix.deliver(bits));
    this.writeCap();
    this.dv.setUint32(this.bar + R.NVME_REG_VS, R.NVME_VS_2_0, true);
  }

  /** Add an NVMe function with `ioQueues` I/O queue pairs for guest g on disk d, and its model. */
  private writeCap(): void {
    const lo = R.NVME_MQES | R.NVME_CAP_CQR | (R.NVME_CAP_TO << R.NVME_CAP_TO_SHIFT); // AMS 0: round robin only
    const hi = R.NVME_DSTRD | R.NVME_CAP_HI_CSS_NVM | (0 << R.NVME_CAP_HI_MPSMIN_SHIFT) | (0 << R.NVME_CAP_HI_MPSMAX_SHIFT);
    this.dv.setUint32(this.bar + R.NVME_REG_CAP, lo >>> 0, true);
    this.dv.setUint32(this.bar + R.NVME_REG_CAP + 4, hi, true);
  }

  private reg(off: number): number { return this.dv.getUint32(this.bar + off, true); }
  private setReg(off: number, v: number): void { this.dv.setUint32(this.bar + off, v >>> 0, true); }

  /** Guest MMIO read of BAR0 (4 or 8 bytes). */
  read(off: number, size: 4 | 8 = 4): number {
    if (size === 8) return this.read(off, 4) + this.read(off + 4, 4) * 2 ** 32;
    if (off < 0 || off + 4 > M.BAR_SIZE || (off & 3) !== 0) return 0xffffffff;
    if (this.msix.owns(off)) return this.msix.read(off, 4);
    return this.reg(off);
  }

  /** Guest MMIO write to BAR0 (4 or 8 bytes; 8-byte writes are two dword writes, low first). */
  write(off: number, value: number, size: 4 | 8 = 4): void {
    if (size === 8) { this.write(off, value % 2 ** 32, 4); this.write(off + 4, Math.floor(value / 2 ** 32), 4); return; }
    if (off < 0 || off + 4 > M.BAR_SIZE || (off & 3) !== 0) return;
    if (off >= R.NVME_DB_BASE && off < DOORBELLS_END) return this.doorbell(off, value);
    if (this.msix.owns(off)) return this.msix.write(off, 4, value);
    switch (off) {
      case R.NVME_REG_CC: return this.writeCc(value >>> 0);
      case R.NVME_REG_INTMS: return this.setMask(this.reg(R.NVME_REG_INTMS) | value);
      case R.NVME_REG_INTMC: return this.setMask(this.reg(R.NVME_REG_INTMS) & ~value);
      case R.NVME_REG_AQA: return this.setReg(off, value & AQA_WRITABLE);
      case R.NVME_REG_ASQ: case R.NVME_REG_ACQ: return this.setReg(off, value & QBASE_LOW_WRITABLE);
      case R.NVME_REG_ASQ + 4: case R.NVME_REG_ACQ + 4: return this.setReg(off, value);
      default: return; // read-only (CAP, VS, CSTS) or reserved
    }
  }

  /** SQ y tail / CQ y head doorbell: store the value, flag queue y. */
  private doorbell(off: number, value: number): void {
    this.setReg(off, value & R.NVME_DB_VALUE_MASK);
    this.doorbellWrites++;
    this.card.doorbell(this.func, ((off - R.NVME_DB_BASE) / R.NVME_DB_STRIDE) >> 1);
  }

  /** INTMS/INTMC (§3.1.4.3/4): pin-based and MSI masking; kept for reads, MSI-X ignores it. */
  private setMask(v: number): void {
    this.setReg(R.NVME_REG_INTMS, v);
    this.setReg(R.NVME_REG_INTMC, v);
  }

  private writeCc(v: number): void {
    const old = this.reg(R.NVME_REG_CC);
    const cc = v & CC_WRITABLE;
    this.setReg(R.NVME_REG_CC, cc);
    const wasOn = (old & R.NVME_CC_EN) !== 0, on = (cc & R.NVME_CC_EN) !== 0;
    if (!wasOn && on) this.enable();
    else if (wasOn && !on) this.reset();
    const shn = (cc >>> R.NVME_CC_SHN_SHIFT) & SHN_MASK;
    if (shn !== 0 && ((old >>> R.NVME_CC_SHN_SHIFT) & SHN_MASK) === 0) this.shutdown();
  }

  /** CC.EN 0→1: the firmware takes the admin queue; CSTS.RDY, or CSTS.CFS when it cannot. */
  private enable(): void {
    this.transition(this.card.fw.nvmeEnable(this.func) === 0 ? CtrlState.READY : CtrlState.FATAL);
  }

  /** CC.EN 1→0: controller reset (§3.7.2): queues deleted, doorbells cleared, CSTS.RDY = 0. */
  private reset(): void {
    this.card.fw.funcReset(this.func);
    this.card.u8.fill(0, this.bar + R.NVME_DB_BASE, this.bar + DOORBELLS_END);
    this.transition(CtrlState.DISABLED);
  }

  /** CC.SHN set: nothing is cached on the card, so shutdown processing completes at once. */
  private shutdown(): void {
    if (this.state === CtrlState.READY) this.transition(CtrlState.SHUT_DOWN);
  }

  /** The one place CSTS changes. */
  private transition(to: CtrlState): void {
    this.state = to;
    const csts = to === CtrlState.READY ? R.NVME_CSTS_RDY
      : to === CtrlState.FATAL ? R.NVME_CSTS_CFS
      : to === CtrlState.SHUT_DOWN ? R.NVME_CSTS_RDY | (R.NVME_SHST_COMPLETE << R.NVME_CSTS_SHST_SHIFT)
      : 0;
    this.setReg(R.NVME_REG_CSTS, csts);
  }
}

function pcieCapBody(): Uint8Array {
  const body = new Uint8Array(PCIE_CAP_BODY);
  const dv = new DataView(body.buffer);
  dv.setUint16(0, PCIE_CAP_VERSION, true); // device/port type 0000b: PCI Express endpoint
  dv.setUint32(PCIE_OFF_DEVCAP, PCIE_DEVCAP_MPS_256, true);
  dv.setUint32(PCIE_OFF_LINKCAP, PCIE_LINK_8GT_X4, true);
  dv.setUint16(PCIE_OFF_LINKSTA, PCIE_LINK_8GT_X4, true);
  return body;
}
