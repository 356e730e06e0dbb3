// A modern virtio-pci virtio-blk function (virtio 1.2 §4.1, §5.2): PCI config space
// with the virtio vendor capabilities and MSI-X, and BAR0 (the function's register file
// in card memory) holding common cfg, ISR, device cfg, the notify area and the MSI-X
// table/PBA. A notify write only sets the queue's doorbell bit; the firmware does the
// work on the next poll. Queue enable hands the queue's rings to the firmware once.
import type { Card } from "../card.js";
import { PciConfig, PCI_CAP_ID_VNDR } from "./config.js";
import { Msix } from "./msix.js";
import * as V from "../../assembly/virtio/layout.js";

// ---- virtio 1.2 §4.1.2: PCI IDs ----
export const VIRTIO_PCI_VENDOR = 0x1af4;
export const VIRTIO_PCI_DEVICE_BLK = 0x1040 + 2; // 0x1040 + virtio device id 2 (block)
export const VIRTIO_PCI_CLASS_STORAGE_SCSI = 0x010000;
export const VIRTIO_PCI_REVISION = 1; // §4.1.2.1: modern devices have revision >= 1
export const VIRTIO_PCI_SUBSYS_BLK = 0x0002;

// ---- virtio 1.2 §4.1.4: vendor capability {vndr, next, len, cfg_type, bar, id, pad[2], offset, length} ----
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_CAP_LEN = 16;
export const VIRTIO_NOTIFY_CAP_LEN = 20; // + notify_off_multiplier u32 (§4.1.4.4)
export const CAP_CFG_TYPE = 3; // offsets inside the capability, from its id byte
export const CAP_BAR = 4;
export const CAP_OFFSET = 8;
export const CAP_LENGTH = 12;
export const CAP_NOTIFY_MULT = 16;

// ---- BAR0 map of this device ----
export const BAR_COMMON = 0x0000;
export const BAR_COMMON_LEN = 0x40;
export const BAR_ISR = 0x1000;
export const BAR_ISR_LEN = 4;
export const BAR_DEVICE = 0x2000;
export const BAR_DEVICE_LEN = 0x40;
export const BAR_NOTIFY = 0x3000;
export const NOTIFY_OFF_MULTIPLIER = 4;
export const BAR_MSIX_TABLE = 0x3400;
export const BAR_MSIX_PBA = 0x3600;
export const BAR0_SIZE = 0x4000;

// ---- virtio 1.2 §4.1.4.3: common configuration structure ----
export const CC_DEVICE_FEATURE_SELECT = 0x00;
export const CC_DEVICE_FEATURE = 0x04;
export const CC_DRIVER_FEATURE_SELECT = 0x08;
export const CC_DRIVER_FEATURE = 0x0c;
export const CC_CONFIG_MSIX_VECTOR = 0x10;
export const CC_NUM_QUEUES = 0x12;
export const CC_DEVICE_STATUS = 0x14;
export const CC_CONFIG_GENERATION = 0x15;
export const CC_QUEUE_SELECT = 0x16;
export const CC_QUEUE_SIZE = 0x18;
export const CC_QUEUE_MSIX_VECTOR = 0x1a;
export const CC_QUEUE_ENABLE = 0x1c;
export const CC_QUEUE_NOTIFY_OFF = 0x1e;
export const CC_QUEUE_DESC = 0x20;
export const CC_QUEUE_DRIVER = 0x28;
export const CC_QUEUE_DEVICE = 0x30;

// ---- virtio 1.2 §2.1: device status ----
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 64;
export const STATUS_FAILED = 128;

// ---- virtio 1.2 §5.2.4: virtio-blk device configuration ----
export const BLK_CFG_CAPACITY = 0x00; // u64, 512-byte sectors
export const BLK_CFG_SIZE_MAX = 0x08;
export const BLK_CFG_SEG_MAX = 0x0c;
export const BLK_CFG_BLK_SIZE = 0x14;
export const BLK_CFG_PHYS_BLOCK_EXP = 0x18;
export const BLK_CFG_MIN_IO_SIZE = 0x1a; // u16, in blk_size units
export const BLK_CFG_NUM_QUEUES = 0x22; // u16
export const BLK_CFG_MAX_DISCARD_SECTORS = 0x24;
export const BLK_CFG_MAX_DISCARD_SEG = 0x28;
export const BLK_CFG_DISCARD_ALIGN = 0x2c;
export const BLK_CFG_MAX_WZ_SECTORS = 0x30;
export const BLK_CFG_MAX_WZ_SEG = 0x34;
export const BLK_CFG_WZ_MAY_UNMAP = 0x38;

const bit = (n: number) => 2n ** BigInt(n);
/** Features this device offers (virtio 1.2 §6, §5.2.3). */
export const OFFERED_FEATURES =
  bit(V.F_VERSION_1) | bit(V.F_RING_INDIRECT_DESC) | bit(V.F_RING_EVENT_IDX) | bit(V.F_RING_PACKED) |
  bit(V.F_BLK_BLK_SIZE) | bit(V.F_BLK_SEG_MAX) | bit(V.F_BLK_FLUSH) | bit(V.F_BLK_MQ) |
  bit(V.F_BLK_DISCARD) | bit(V.F_BLK_WRITE_ZEROES);

/** Where the device stands in the §3.1 initialization sequence (one transition function: setStatus). */
export enum DevState { RESET, ACKNOWLEDGED, DRIVER, FEATURES_OK, DRIVER_OK, FAILED }

interface QueueRegs { size: number; vector: number; enabled: boolean; desc: bigint; driver: bigint; device: bigint }

export interface VirtioBlkPciOptions {
  guest: number;
  disk: number;
  /** Request queues (MQ); default 1. */
  queues?: number;
  /** Largest queue size offered; default 256. */
  queueSize?: number;
}

/** The bus a guest driver sees: config space and BAR0 MMIO of one function. */
export interface PciFunctionBus {
  configRead(off: number, size: 1 | 2 | 4): number;
  configWrite(off: number, size: 1 | 2 | 4, value: number): void;
  mmioRead(off: number, size: 1 | 2 | 4): number;
  mmioWrite(off: number, size: 1 | 2 | 4, value: number): void;
}

export class VirtioBlkPci implements PciFunctionBus {
  readonly func: number;
  readonly config: PciConfig;
  readonly msix: Msix;
  readonly nqueues: number;
  readonly maxQueueSize: number;
  state = DevState.RESET;
  /** Notify writes seen (each sets one doorbell bit). */
  notifies = 0;
  private readonly bar: number;
  private status = 0;
  private dfSelect = 0;
  private drfSelect = 0;
  private driverFeatures = 0n;
  private configVector = V.NO_VECTOR;
  private queueSel = 0;
  private queues: QueueRegs[] = [];

  constructor(readonly card: Card, o: VirtioBlkPciOptions) {
    this.nqueues = o.queues ?? 1;
    this.maxQueueSize = o.queueSize ?? 256;
    if (this.maxQueueSize < 1 || this.maxQueueSize > V.MAX_QSIZE) throw new RangeError(`virtio-blk: queue size ${this.maxQueueSize} outside 1..${V.MAX_QSIZE}`);
    this.func = card.addFunction(1 /* FuncType.VIRTIO_BLK */, o.guest, o.disk, this.nqueues);
    this.bar = card.barBase(this.func);
    card.u8.fill(0, this.bar, this.bar + BAR0_SIZE);
    this.config = new PciConfig({ vendor: VIRTIO_PCI_VENDOR, device: VIRTIO_PCI_DEVICE_BLK, classCode: VIRTIO_PCI_CLASS_STORAGE_SCSI,
      revision: VIRTIO_PCI_REVISION, subsysVendor: VIRTIO_PCI_VENDOR, subsys: VIRTIO_PCI_SUBSYS_BLK }, BAR0_SIZE);
    this.addVirtioCap(VIRTIO_PCI_CAP_COMMON_CFG, BAR_COMMON, BAR_COMMON_LEN);
    this.addVirtioCap(VIRTIO_PCI_CAP_NOTIFY_CFG, BAR_NOTIFY, this.nqueues * NOTIFY_OFF_MULTIPLIER, NOTIFY_OFF_MULTIPLIER);
    this.addVirtioCap(VIRTIO_PCI_CAP_ISR_CFG, BAR_ISR, BAR_ISR_LEN);
    this.addVirtioCap(VIRTIO_PCI_CAP_DEVICE_CFG, BAR_DEVICE, BAR_DEVICE_LEN);
    // One vector for config changes and one per queue, as Linux asks for.
    this.msix = new Msix(this.config, card.u8, card.dv, this.bar, this.nqueues + 1, BAR_MSIX_TABLE, BAR_MSIX_PBA, card.guests[o.guest]!);
    card.onIrq(this.func, (bits) => this.msix.deliver(bits));
    this.writeDeviceConfig(o.disk);
    this.reset();
  }

  private addVirtioCap(type: number, offset: number, length: number, mult?: number): void {
    const body = new Uint8Array((mult === undefined ? VIRTIO_CAP_LEN : VIRTIO_NOTIFY_CAP_LEN) - 2);
    const dv = new DataView(body.buffer);
    dv.setUint8(0, body.length + 2); // cap_len
    dv.setUint8(CAP_CFG_TYPE - 2, type);
    dv.setUint8(CAP_BAR - 2, 0);
    dv.setUint32(CAP_OFFSET - 2, offset, true);
    dv.setUint32(CAP_LENGTH - 2, length, true);
    if (mult !== undefined) dv.setUint32(CAP_NOTIFY_MULT - 2, mult, true);
    this.config.addCapability(PCI_CAP_ID_VNDR, body);
  }

  private writeDeviceConfig(disk: number): void {
    const d = this.card.disks[disk]!;
    const dv = this.card.dv, at = this.bar + BAR_DEVICE;
    const sectorsPerBlock = d.blockSize / 512;
    dv.setBigUint64(at + BLK_CFG_CAPACITY, BigInt(d.blocks) * BigInt(sectorsPerBlock), true);
    dv.setUint32(at + BLK_CFG_SEG_MAX, V.SEG_MAX, true);
    dv.setUint32(at + BLK_CFG_BLK_SIZE, d.blockSize, true);
    dv.setUint16(at + BLK_CFG_MIN_IO_SIZE, 1, true);
    dv.setUint16(at + BLK_CFG_NUM_QUEUES, this.nqueues, true);
    const maxSectors = V.MAX_DISCARD_SECTORS - (V.MAX_DISCARD_SECTORS % sectorsPerBlock);
    dv.setUint32(at + BLK_CFG_MAX_DISCARD_SECTORS, maxSectors, true);
    dv.setUint32(at + BLK_CFG_MAX_DISCARD_SEG, 1, true);
    dv.setUint32(at + BLK_CFG_DISCARD_ALIGN, sectorsPerBlock, true);
    dv.setUint32(at + BLK_CFG_MAX_WZ_SECTORS, maxSectors, true);
    dv.setUint32(at + BLK_CFG_MAX_WZ_SEG, 1, true);
    dv.setUint8(at + BLK_CFG_WZ_MAY_UNMAP, 1);
  }

  // ---- config space ----
  configRead(off: number, size: 1 | 2 | 4): number { return this.config.read(off, size); }
  configWrite(off: number, size: 1 | 2 | 4, value: number): void { this.config.write(off, size, value); }

  // ---- BAR0 ----
  mmioRead(off: number, size: 1 | 2 | 4): number {
    if (this.msix.owns(off)) return this.msix.read(off, size);
    if (off >= BAR_COMMON && off < BAR_COMMON + BAR_COMMON_LEN) this.refreshCommon();
    if (off >= BAR_ISR && off < BAR_ISR + BAR_ISR_LEN) return 0; // MSI-X only: no INTx status to report
    if (off < 0 || off + size > BAR0_SIZE) return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    const dv = this.card.dv, a = this.bar + off;
    return size === 1 ? dv.getUint8(a) : size === 2 ? dv.getUint16(a, true) : dv.getUint32(a, true);
  }

  mmioWrite(off: number, size: 1 | 2 | 4, value: number): void {
    if (this.msix.owns(off)) { this.msix.write(off, size, value); return; }
    if (off >= BAR_NOTIFY && off < BAR_NOTIFY + this.nqueues * NOTIFY_OFF_MULTIPLIER) {
      // §4.1.5.2: the queue is named by where the driver writes; that is all a notify does.
      this.notifies++;
      this.card.doorbell(this.func, Math.floor((off - BAR_NOTIFY) / NOTIFY_OFF_MULTIPLIER));
      return;
    }
    if (off >= BAR_COMMON && off < BAR_COMMON + BAR_COMMON_LEN) this.commonWrite(off - BAR_COMMON, size, value >>> 0);
    // device config is read-only for virtio-blk without CONFIG_WCE; ISR is read-only
  }

  private commonWrite(reg: number, size: number, v: number): void {
    const q = this.queues[this.queueSel];
    const frozen = this.state >= DevState.FEATURES_OK;
    switch (reg) {
      case CC_DEVICE_FEATURE_SELECT: this.dfSelect = v; break;
      case CC_DRIVER_FEATURE_SELECT: this.drfSelect = v; break;
      case CC_DRIVER_FEATURE:
        if (frozen || this.drfSelect > 1) break; // §3.1.1: features are fixed once FEATURES_OK is set
        this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << BigInt(32 * this.drfSelect))) | (BigInt(v) << BigInt(32 * this.drfSelect));
        break;
      case CC_CONFIG_MSIX_VECTOR:
        this.configVector = (v & 0xffff) < this.msix.vectors ? v & 0xffff : V.NO_VECTOR; // reads back NO_VECTOR when refused
        this.card.fw.virtioConfigVector(this.func, this.configVector);
        break;
      case CC_DEVICE_STATUS: this.setStatus(v & 0xff); break;
      case CC_QUEUE_SELECT: this.queueSel = v & 0xffff; break;
      case CC_QUEUE_SIZE: if (q && !q.enabled) q.size = Math.min(v & 0xffff, this.maxQueueSize); break;
      case CC_QUEUE_MSIX_VECTOR:
        if (!q) break;
        q.vector = (v & 0xffff) < this.msix.vectors ? v & 0xffff : V.NO_VECTOR; // reads back NO_VECTOR when refused
        if (q.enabled) this.card.fw.virtioQueueVector(this.func, this.queueSel, q.vector);
        break;
      case CC_QUEUE_ENABLE: if (q && (v & 1) && !q.enabled) this.enableQueue(this.queueSel, q); break;
      case CC_QUEUE_DESC: case CC_QUEUE_DESC + 4: if (q && !q.enabled) q.desc = setHalf(q.desc, reg - CC_QUEUE_DESC, v, size); break;
      case CC_QUEUE_DRIVER: case CC_QUEUE_DRIVER + 4: if (q && !q.enabled) q.driver = setHalf(q.driver, reg - CC_QUEUE_DRIVER, v, size); break;
      case CC_QUEUE_DEVICE: case CC_QUEUE_DEVICE + 4: if (q && !q.enabled) q.device = setHalf(q.device, reg - CC_QUEUE_DEVICE, v, size); break;
      default: break; // read-only registers
    }
    this.refreshCommon();
  }

  /** The one transition function of the device status state machine (virtio 1.2 §2.1, §3.1.1). */
  private setStatus(v: number): void {
    if (v === 0) { this.reset(); return; }
    if (v & STATUS_FAILED) { this.status = v; this.state = DevState.FAILED; return; }
    const added = v & ~this.status;
    if ((added & STATUS_FEATURES_OK) && this.state < DevState.FEATURES_OK) {
      const ok = (this.driverFeatures & ~OFFERED_FEATURES) === 0n && (this.driverFeatures & bit(V.F_VERSION_1)) !== 0n;
      if (!ok) v &= ~STATUS_FEATURES_OK; // refused: the driver reads FEATURES_OK back as clear
      else {
        this.card.fw.virtioSetFeatures(this.func, Number(this.driverFeatures & 0xffffffffn), Number(this.driverFeatures >> 32n));
        this.state = DevState.FEATURES_OK;
      }
    }
    if ((added & STATUS_DRIVER_OK) && this.state === DevState.FEATURES_OK) {
      this.card.fw.virtioSetDriverOk(this.func, 1);
      this.state = DevState.DRIVER_OK;
    }
    if (this.state < DevState.FEATURES_OK) {
      if (v & STATUS_DRIVER) this.state = DevState.DRIVER;
      else if (v & STATUS_ACKNOWLEDGE) this.state = DevState.ACKNOWLEDGED;
    }
    this.status = v & ~STATUS_DEVICE_NEEDS_RESET;
  }

  /** §4.1.4.3.2: writing 0 to device_status resets the device; the firmware resets its queues. */
  private reset(): void {
    this.card.fw.funcReset(this.func);
    this.status = 0;
    this.state = DevState.RESET;
    this.driverFeatures = 0n;
    this.dfSelect = this.drfSelect = this.queueSel = 0;
    this.configVector = V.NO_VECTOR;
    this.queues = Array.from({ length: this.nqueues }, () => ({ size: this.maxQueueSize, vector: V.NO_VECTOR, enabled: false, desc: 0n, driver: 0n, device: 0n }));
    this.refreshCommon();
  }

  private enableQueue(q: number, r: QueueRegs): void {
    if (this.state < DevState.FEATURES_OK) return;
    const lo = (x: bigint) => Number(x & 0xffffffffn), hi = (x: bigint) => Number((x >> 32n) & 0xffffffffn);
    const rc = this.card.fw.virtioQueueSetup(this.func, q, r.size, r.vector, lo(r.desc), hi(r.desc), lo(r.driver), hi(r.driver), lo(r.device), hi(r.device));
    r.enabled = rc === 0;
  }

  /** Mirror the registers into the BAR file, as the selected queue and the firmware see them. */
  private refreshCommon(): void {
    const dv = this.card.dv, a = this.bar + BAR_COMMON;
    const q = this.queues[this.queueSel];
    const features = this.dfSelect <= 1 ? Number((OFFERED_FEATURES >> BigInt(32 * this.dfSelect)) & 0xffffffffn) : 0;
    dv.setUint32(a + CC_DEVICE_FEATURE_SELECT, this.dfSelect, true);
    dv.setUint32(a + CC_DEVICE_FEATURE, features, true);
    dv.setUint32(a + CC_DRIVER_FEATURE_SELECT, this.drfSelect, true);
    dv.setUint32(a + CC_DRIVER_FEATURE, this.drfSelect <= 1 ? Number((this.driverFeatures >> BigInt(32 * this.drfSelect)) & 0xffffffffn) : 0, true);
    dv.setUint16(a + CC_CONFIG_MSIX_VECTOR, this.configVector, true);
    dv.setUint16(a + CC_NUM_QUEUES, this.nqueues, true);
    const needsReset = this.state !== DevState.RESET && this.card.fw.virtioNeedsReset(this.func) !== 0;
    dv.setUint8(a + CC_DEVICE_STATUS, this.status | (needsReset ? STATUS_DEVICE_NEEDS_RESET : 0));
    dv.setUint8(a + CC_CONFIG_GENERATION, 0);
    dv.setUint16(a + CC_QUEUE_SELECT, this.queueSel, true);
    dv.setUint16(a + CC_QUEUE_SIZE, q ? q.size : 0, true); // §4.1.4.3: 0 for a queue that does not exist
    dv.setUint16(a + CC_QUEUE_MSIX_VECTOR, q ? q.vector : V.NO_VECTOR, true);
    dv.setUint16(a + CC_QUEUE_ENABLE, q?.enabled ? 1 : 0, true);
    dv.setUint16(a + CC_QUEUE_NOTIFY_OFF, q ? this.queueSel : 0, true);
    dv.setBigUint64(a + CC_QUEUE_DESC, q ? q.desc : 0n, true);
    dv.setBigUint64(a + CC_QUEUE_DRIVER, q ? q.driver : 0n, true);
    dv.setBigUint64(a + CC_QUEUE_DEVICE, q ? q.device : 0n, true);
  }
}

/** Write the 32-bit half (at byte 0 or 4) of a 64-bit register. */
function setHalf(x: bigint, at: number, v: number, size: number): bigint {
  if (size !== 4) return x;
  return at === 0 ? (x & ~0xffffffffn) | BigInt(v >>> 0) : (x & 0xffffffffn) | (BigInt(v >>> 0) << 32n);
}
