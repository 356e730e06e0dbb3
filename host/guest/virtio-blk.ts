// Guest virtio-blk driver, doing on the wire what Linux's virtio_pci + virtio_ring +
// virtio_blk do: find the virtio capabilities in config space, reset, ACKNOWLEDGE,
// DRIVER, negotiate features, check FEATURES_OK, set up MSI-X (config + one vector per
// queue) and the queues, DRIVER_OK. Requests are header + data + status descriptors
// (one indirect descriptor when INDIRECT_DESC is negotiated); `submit` writes them,
// `kick` publishes and notifies once per batch (honouring avail_event / NO_NOTIFY or
// the packed device event structure), `reap` walks the used ring.
import type { GuestRam } from "./ram.js";
import { BlkOp, type BlockDriver } from "./driver.js";
import { PCI_CAP_PTR, PCI_COMMAND, PCI_COMMAND_MEMORY, PCI_COMMAND_MASTER, PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR } from "../pcie/config.js";
import { MSIX_ENTRY_SIZE, MSIX_CTRL_ENABLE } from "../pcie/msix.js";
import {
  type PciFunctionBus, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_CAP_DEVICE_CFG,
  CAP_CFG_TYPE, CAP_OFFSET, CAP_NOTIFY_MULT, CC_DEVICE_FEATURE_SELECT, CC_DEVICE_FEATURE, CC_DRIVER_FEATURE_SELECT,
  CC_DRIVER_FEATURE, CC_CONFIG_MSIX_VECTOR, CC_DEVICE_STATUS, CC_QUEUE_SELECT, CC_QUEUE_SIZE, CC_QUEUE_MSIX_VECTOR,
  CC_QUEUE_ENABLE, CC_QUEUE_NOTIFY_OFF, CC_QUEUE_DESC, CC_QUEUE_DRIVER, CC_QUEUE_DEVICE, CC_NUM_QUEUES,
  STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_FEATURES_OK, STATUS_DRIVER_OK, BLK_CFG_CAPACITY, BLK_CFG_BLK_SIZE,
  BLK_CFG_NUM_QUEUES,
} from "../pcie/virtio-pci.js";
import * as V from "../../assembly/virtio/layout.js";

const MSI_ADDRESS = 0xfee00000; // x86 MSI address window; the data is the vector number
const MSIX_CAP_TABLE = 4; // table offset/BIR in the MSI-X capability (PCI 3.0 §6.8.2)
const MSIX_CAP_CONTROL = 2;
const MSIX_BIR_MASK = 7;
const STATUS_UNSET = 0xff; // preset status byte: still there when the device wrote none
const SLOT_BYTES = 64; // per request id: header @0, discard/write-zeroes payload @16, status @32
const SLOT_PAYLOAD = 16;
const SLOT_STATUS = 32;
const INDIRECT_ENTRIES = 4; // header, data, status (+1 spare)
const U16 = 0xffff;

const bit = (n: number) => 2n ** BigInt(n);
/** A guest address or sector as two little-endian u32 (no BigInt on the request path). */
function setU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, v >>> 0, true);
  dv.setUint32(at + 4, Math.floor(v / 2 ** 32) >>> 0, true);
}
const needEvent = (event: number, nw: number, old: number) => ((nw - event - 1) & U16) < ((nw - old) & U16); // virtio 1.2 §2.7.10

/** One scatter-gather element of a request: guest address, length, device-writable. */
export interface Sg { addr: number; len: number; write: boolean }

function setSg(s: Sg, addr: number, len: number, write: boolean): void { s.addr = addr; s.len = len; s.write = write; }

export interface VirtioBlkDriverOptions {
  /** Negotiate RING_PACKED (virtio 1.2 §2.8); default split. */
  packed?: boolean;
  /** Negotiate RING_INDIRECT_DESC; default true. */
  indirect?: boolean;
  /** Negotiate RING_EVENT_IDX; default true. */
  eventIdx?: boolean;
  /** Queues to use (MQ when > 1); default 1. */
  queues?: number;
  /** Queue size; default the device's maximum. */
  queueSize?: number;
}

/** Guest addresses of one virtqueue's rings, for tests that write raw ring contents. */
export interface RingInfo { size: number; desc: number; driver: number; device: number; packed: boolean }

abstract class VQueue {
  readonly tags: number[];
  readonly slots: number; // guest address of SLOT_BYTES per id
  readonly indirectTables: number;
  added = 0; // descriptors (packed) or buffers (split) added since the last kick
  interrupts = true;
  constructor(readonly g: GuestRam, readonly size: number, readonly useIndirect: boolean, readonly eventIdx: boolean) {
    this.tags = new Array<number>(size).fill(-1);
    this.slots = g.alloc(size * SLOT_BYTES, 64);
    this.indirectTables = useIndirect ? g.alloc(size * INDIRECT_ENTRIES * V.DESC_SIZE, 16) : 0;
  }
  abstract readonly ring: RingInfo;
  /** Descriptors a request of n elements takes. */
  cost(n: number): number { return this.useIndirect && n > 1 ? 1 : n; }
  abstract canTake(n: number): boolean;
  /** The id the next add() will use. */
  abstract peekId(): number;
  /** Write a request's descriptors; returns its id (split: head index; packed: buffer id). */
  abstract add(sgs: Sg[], tag: number): number;
  /** Publish what was added; true when the device wants a notification. */
  abstract publish(): boolean;
  abstract reap(done: (tag: number, status: number, id: number) => void): number;
  /** Write the driver's interrupt suppression state (on after every reap). */
  abstract armInterrupts(): void;
  /** A write-able slot for id's header/status. */
  slot(id: number): number { return this.slots + id * SLOT_BYTES; }
  writeIndirect(id: number, sgs: Sg[], packed: boolean): number {
    const t = this.indirectTables + id * INDIRECT_ENTRIES * V.DESC_SIZE, dv = this.g.dv;
    for (let i = 0; i < sgs.length; i++) {
      const s = sgs[i]!, d = t + i * V.DESC_SIZE;
      setU64(dv, d + V.DESC_ADDR, s.addr);
      dv.setUint32(d + V.DESC_LEN, s.len, true);
      const fl = s.write ? V.DESCF_WRITE : 0;
      if (packed) { dv.setUint16(d + V.PDESC_ID, 0, true); dv.setUint16(d + V.PDESC_FLAGS, fl, true); }
      else { dv.setUint16(d + V.DESC_FLAGS, fl | (i + 1 < sgs.length ? V.DESCF_NEXT : 0), true); dv.setUint16(d + V.DESC_NEXT, i + 1, true); }
    }
    return t;
  }
}

/** Split virtqueue (virtio 1.2 §2.7), driver side. */
class SplitQueue extends VQueue {
  readonly ring: RingInfo;
  private freeHead = 0;
  private numFree: number;
  private availIdx = 0;
  private lastUsed = 0;
  private readonly chainLen: number[];
  constructor(g: GuestRam, size: number, indirect: boolean, eventIdx: boolean) {
    super(g, size, indirect, eventIdx);
    const desc = g.alloc(size * V.DESC_SIZE, 16);
    const driver = g.alloc(V.AVAIL_RING + size * 2 + 2, 2);
    const device = g.alloc(V.USED_RING + size * V.USED_ELEM_SIZE + 2, 4);
    this.ring = { size, desc, driver, device, packed: false };
    for (let i = 0; i < size; i++) g.dv.setUint16(desc + i * V.DESC_SIZE + V.DESC_NEXT, i + 1, true);
    this.numFree = size;
    this.chainLen = new Array<number>(size).fill(0);
  }
  canTake(n: number): boolean { return this.cost(n) <= this.numFree; }
  peekId(): number { return this.freeHead; }
  private use(i: number, addr: number, len: number, flags: number): void {
    const dv = this.g.dv, d = this.ring.desc + i * V.DESC_SIZE;
    setU64(dv, d + V.DESC_ADDR, addr);
    dv.setUint32(d + V.DESC_LEN, len, true);
    dv.setUint16(d + V.DESC_FLAGS, flags, true);
  }
  add(sgs: Sg[], tag: number): number {
    const dv = this.g.dv, desc = this.ring.desc;
    const head = this.freeHead;
    const n = this.cost(sgs.length);
    if (n === 1 && sgs.length > 1) {
      this.freeHead = dv.getUint16(desc + head * V.DESC_SIZE + V.DESC_NEXT, true);
      this.use(head, this.writeIndirect(head, sgs, false), sgs.length * V.DESC_SIZE, V.DESCF_INDIRECT);
    } else {
      let i = head;
      for (let k = 0; k < sgs.length; k++) {
        const s = sgs[k]!, next = dv.getUint16(desc + i * V.DESC_SIZE + V.DESC_NEXT, true);
        this.use(i, s.addr, s.len, (s.write ? V.DESCF_WRITE : 0) | (k + 1 < sgs.length ? V.DESCF_NEXT : 0));
        if (k + 1 < sgs.length) i = next; else this.freeHead = next;
      }
    }
    this.numFree -= n;
    this.chainLen[head] = n;
    this.tags[head] = tag;
    dv.setUint16(this.ring.driver + V.AVAIL_RING + (this.availIdx % this.size) * 2, head, true);
    this.availIdx = (this.availIdx + 1) & U16;
    this.added++;
    return head;
  }
  publish(): boolean {
    const dv = this.g.dv;
    const nw = this.availIdx, old = (nw - this.added) & U16;
    dv.setUint16(this.ring.driver + V.AVAIL_IDX, nw, true);
    this.added = 0;
    if (nw === old) return false;
    if (this.eventIdx) return needEvent(dv.getUint16(this.ring.device + V.USED_RING + this.size * V.USED_ELEM_SIZE, true), nw, old);
    return (dv.getUint16(this.ring.device + V.USED_FLAGS, true) & V.USED_F_NO_NOTIFY) === 0;
  }
  reap(done: (tag: number, status: number, id: number) => void): number {
    const dv = this.g.dv, desc = this.ring.desc;
    const usedIdx = dv.getUint16(this.ring.device + V.USED_IDX, true);
    let n = 0;
    while (this.lastUsed !== usedIdx) {
      const e = this.ring.device + V.USED_RING + (this.lastUsed % this.size) * V.USED_ELEM_SIZE;
      const id = dv.getUint32(e, true);
      this.lastUsed = (this.lastUsed + 1) & U16;
      if (id >= this.size || this.tags[id] === -1) throw new Error(`virtio-blk: device returned unknown id ${id}`);
      const tag = this.tags[id]!;
      this.tags[id] = -1;
      // give the chain back to the free list
      let last = id;
      for (let k = 1; k < this.chainLen[id]!; k++) last = dv.getUint16(desc + last * V.DESC_SIZE + V.DESC_NEXT, true);
      dv.setUint16(desc + last * V.DESC_SIZE + V.DESC_NEXT, this.freeHead, true);
      this.freeHead = id;
      this.numFree += this.chainLen[id]!;
      done(tag, this.g.u8[this.slot(id) + SLOT_STATUS]!, id);
      n++;
    }
    this.armInterrupts();
    return n;
  }
  /** used_event / NO_INTERRUPT (§2.7.10): interrupt on the next completion, or not at all. */
  armInterrupts(): void {
    const dv = this.g.dv;
    if (this.eventIdx) dv.setUint16(this.ring.driver + V.AVAIL_RING + this.size * 2, this.interrupts ? this.lastUsed : (this.lastUsed + 0x8000) & U16, true);
    else dv.setUint16(this.ring.driver + V.AVAIL_FLAGS, this.interrupts ? 0 : V.AVAIL_F_NO_INTERRUPT, true);
  }
}

/** Packed virtqueue (virtio 1.2 §2.8), driver side. */
class PackedQueue extends VQueue {
  readonly ring: RingInfo;
  private nextAvail = 0;
  private availWrap = 1;
  private lastUsed = 0;
  private usedWrap = 1;
  private numFree: number;
  private readonly freeIds: number[];
  private readonly chainLen: number[];
  private pendingHeads: { pos: number; flags: number }[] = [];
  constructor(g: GuestRam, size: number, indirect: boolean, eventIdx: boolean) {
    super(g, size, indirect, eventIdx);
    const desc = g.alloc(size * V.DESC_SIZE, 16);
    const driver = g.alloc(4, 4), device = g.alloc(4, 4);
    this.ring = { size, desc, driver, device, packed: true };
    this.numFree = size;
    this.freeIds = Array.from({ length: size }, (_, i) => size - 1 - i);
    this.chainLen = new Array<number>(size).fill(0);
  }
  canTake(n: number): boolean { return this.cost(n) <= this.numFree && this.freeIds.length > 0; }
  peekId(): number { return this.freeIds[this.freeIds.length - 1]!; }
  private availBits(): number { return this.availWrap ? V.PDESCF_AVAIL : V.PDESCF_USED; }
  add(sgs: Sg[], tag: number): number {
    const dv = this.g.dv;
    const id = this.freeIds.pop()!;
    const put = (addr: number, len: number, flags: number, head: boolean) => {
      const d = this.ring.desc + this.nextAvail * V.DESC_SIZE;
      setU64(dv, d + V.PDESC_ADDR, addr);
      dv.setUint32(d + V.PDESC_LEN, len, true);
      dv.setUint16(d + V.PDESC_ID, id, true);
      const f = flags | this.availBits();
      if (head) this.pendingHeads.push({ pos: this.nextAvail, flags: f }); // made available by kick()
      else dv.setUint16(d + V.PDESC_FLAGS, f, true);
      if (++this.nextAvail === this.size) { this.nextAvail = 0; this.availWrap ^= 1; }
    };
    const n = this.cost(sgs.length);
    if (n === 1 && sgs.length > 1) put(this.writeIndirect(id, sgs, true), sgs.length * V.DESC_SIZE, V.DESCF_INDIRECT, true);
    else for (let k = 0; k < sgs.length; k++) put(sgs[k]!.addr, sgs[k]!.len, (sgs[k]!.write ? V.DESCF_WRITE : 0) | (k + 1 < sgs.length ? V.DESCF_NEXT : 0), k === 0);
    this.numFree -= n;
    this.chainLen[id] = n;
    this.tags[id] = tag;
    this.added += n;
    return id;
  }
  publish(): boolean {
    const dv = this.g.dv;
    for (const h of this.pendingHeads) dv.setUint16(this.ring.desc + h.pos * V.DESC_SIZE + V.PDESC_FLAGS, h.flags, true);
    this.pendingHeads = [];
    const nw = this.nextAvail, old = (nw - this.added) & U16;
    const added = this.added;
    this.added = 0;
    if (added === 0) return false;
    const flags = dv.getUint16(this.ring.device + V.PEVENT_FLAGS, true);
    if (flags === V.PEVENT_DISABLE) return false;
    if (flags !== V.PEVENT_DESC || !this.eventIdx) return true;
    const ow = dv.getUint16(this.ring.device + V.PEVENT_OFF_WRAP, true);
    let ev = ow & 0x7fff;
    if (ow >> V.PEVENT_WRAP_BIT !== this.availWrap) ev = (ev - this.size) & U16;
    return needEvent(ev, nw, old);
  }
  reap(done: (tag: number, status: number, id: number) => void): number {
    const dv = this.g.dv;
    let n = 0;
    for (;;) {
      const d = this.ring.desc + this.lastUsed * V.DESC_SIZE;
      const fl = dv.getUint16(d + V.PDESC_FLAGS, true);
      const w = this.usedWrap !== 0;
      if (((fl & V.PDESCF_AVAIL) !== 0) !== w || ((fl & V.PDESCF_USED) !== 0) !== w) break;
      const id = dv.getUint16(d + V.PDESC_ID, true);
      if (id >= this.size || this.tags[id] === -1) throw new Error(`virtio-blk: device returned unknown id ${id}`);
      const tag = this.tags[id]!;
      this.tags[id] = -1;
      this.lastUsed += this.chainLen[id]!;
      if (this.lastUsed >= this.size) { this.lastUsed -= this.size; this.usedWrap ^= 1; }
      this.numFree += this.chainLen[id]!;
      this.freeIds.push(id);
      done(tag, this.g.u8[this.slot(id) + SLOT_STATUS]!, id);
      n++;
    }
    this.armInterrupts();
    return n;
  }
  /** Driver event suppression structure (§2.8.10). */
  armInterrupts(): void {
    const dv = this.g.dv;
    if (!this.interrupts) { dv.setUint16(this.ring.driver + V.PEVENT_FLAGS, V.PEVENT_DISABLE, true); return; }
    if (this.eventIdx) {
      dv.setUint16(this.ring.driver + V.PEVENT_OFF_WRAP, this.lastUsed | (this.usedWrap << V.PEVENT_WRAP_BIT), true);
      dv.setUint16(this.ring.driver + V.PEVENT_FLAGS, V.PEVENT_DESC, true);
    } else dv.setUint16(this.ring.driver + V.PEVENT_FLAGS, V.PEVENT_ENABLE, true);
  }
}

export class VirtioBlkDriver implements BlockDriver {
  readonly name = "virtio-blk";
  readonly blockSize: number;
  readonly capacityBlocks: number;
  readonly maxInflight: number;
  /** Negotiated feature bits. */
  readonly features: bigint;
  readonly queues: VQueue[] = [];
  /** MSI-X messages received, by vector (0 = config, 1 + q = queue q). */
  readonly irqs: number[];
  /** Notify writes made. */
  notifies = 0;
  private common = 0;
  private notifyBase = 0;
  private notifyMult = 0;
  private deviceCfg = 0;
  private readonly notifyAddr: number[] = [];
  private rr = 0;

  constructor(readonly bus: PciFunctionBus, readonly guest: GuestRam, o: VirtioBlkDriverOptions = {}) {
    bus.configWrite(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    const msixCap = this.findCaps();
    // §3.1.1 driver initialization
    this.setStatus(0);
    if (this.r8(CC_DEVICE_STATUS) !== 0) throw new Error("virtio-blk: device did not reset");
    this.setStatus(STATUS_ACKNOWLEDGE);
    this.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    const offered = this.readDeviceFeatures();
    let want = bit(V.F_VERSION_1) | bit(V.F_BLK_BLK_SIZE) | bit(V.F_BLK_SEG_MAX) | bit(V.F_BLK_FLUSH) |
      bit(V.F_BLK_DISCARD) | bit(V.F_BLK_WRITE_ZEROES);
    if ((o.queues ?? 1) > 1) want |= bit(V.F_BLK_MQ);
    if (o.indirect ?? true) want |= bit(V.F_RING_INDIRECT_DESC);
    if (o.eventIdx ?? true) want |= bit(V.F_RING_EVENT_IDX);
    if (o.packed) want |= bit(V.F_RING_PACKED);
    this.features = offered & want;
    if (!this.has(V.F_VERSION_1)) throw new Error("virtio-blk: device is not a modern (VERSION_1) device");
    if (o.packed && !this.has(V.F_RING_PACKED)) throw new Error("virtio-blk: device does not offer RING_PACKED");
    this.writeDriverFeatures(this.features);
    this.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if ((this.r8(CC_DEVICE_STATUS) & STATUS_FEATURES_OK) === 0) throw new Error("virtio-blk: device refused the features");
    // device configuration (§5.2.4)
    this.blockSize = this.has(V.F_BLK_BLK_SIZE) ? this.bus.mmioRead(this.deviceCfg + BLK_CFG_BLK_SIZE, 4) : 512;
    const lo = this.bus.mmioRead(this.deviceCfg + BLK_CFG_CAPACITY, 4), hi = this.bus.mmioRead(this.deviceCfg + BLK_CFG_CAPACITY + 4, 4);
    this.capacityBlocks = Math.floor((hi * 2 ** 32 + lo) / (this.blockSize / 512));
    const devQueues = this.has(V.F_BLK_MQ) ? this.bus.mmioRead(this.deviceCfg + BLK_CFG_NUM_QUEUES, 2) : 1;
    const nq = Math.min(o.queues ?? 1, devQueues, this.r16(CC_NUM_QUEUES));
    this.setupMsix(msixCap, nq + 1);
    this.w16(CC_CONFIG_MSIX_VECTOR, 0);
    const indirect = this.has(V.F_RING_INDIRECT_DESC), eventIdx = this.has(V.F_RING_EVENT_IDX);
    for (let q = 0; q < nq; q++) this.setupQueue(q, o.queueSize, indirect, eventIdx);
    this.irqs = new Array<number>(nq + 1).fill(0);
    guest.irq = (address, data) => { if (address === MSI_ADDRESS && data < this.irqs.length) this.irqs[data]!++; };
    this.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    this.maxInflight = this.queues.reduce((s, vq) => s + Math.floor(vq.size / vq.cost(3)), 0);
  }

  has(f: number): boolean { return (this.features & bit(f)) !== 0n; }

  // ---- register access ----
  private r8(reg: number): number { return this.bus.mmioRead(this.common + reg, 1); }
  private r16(reg: number): number { return this.bus.mmioRead(this.common + reg, 2); }
  private w16(reg: number, v: number): void { this.bus.mmioWrite(this.common + reg, 2, v); }
  private w32(reg: number, v: number): void { this.bus.mmioWrite(this.common + reg, 4, v); }
  private w64(reg: number, v: number): void { this.w32(reg, v % 2 ** 32); this.w32(reg + 4, Math.floor(v / 2 ** 32)); }
  private setStatus(v: number): void { this.bus.mmioWrite(this.common + CC_DEVICE_STATUS, 1, v); }

  /** Walk the capability list (§4.1.4): virtio structures and MSI-X. Returns the MSI-X capability. */
  private findCaps(): number {
    let msix = 0;
    for (let p = this.bus.configRead(PCI_CAP_PTR, 1); p !== 0; p = this.bus.configRead(p + 1, 1)) {
      const id = this.bus.configRead(p, 1);
      if (id === PCI_CAP_ID_MSIX) msix = p;
      if (id !== PCI_CAP_ID_VNDR) continue;
      const type = this.bus.configRead(p + CAP_CFG_TYPE, 1), off = this.bus.configRead(p + CAP_OFFSET, 4);
      if (type === VIRTIO_PCI_CAP_COMMON_CFG) this.common = off;
      else if (type === VIRTIO_PCI_CAP_NOTIFY_CFG) { this.notifyBase = off; this.notifyMult = this.bus.configRead(p + CAP_NOTIFY_MULT, 4); }
      else if (type === VIRTIO_PCI_CAP_DEVICE_CFG) this.deviceCfg = off;
    }
    if (msix === 0) throw new Error("virtio-blk: no MSI-X capability");
    return msix;
  }

  private readDeviceFeatures(): bigint {
    this.w32(CC_DEVICE_FEATURE_SELECT, 0);
    const lo = this.bus.mmioRead(this.common + CC_DEVICE_FEATURE, 4);
    this.w32(CC_DEVICE_FEATURE_SELECT, 1);
    const hi = this.bus.mmioRead(this.common + CC_DEVICE_FEATURE, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  private writeDriverFeatures(f: bigint): void {
    this.w32(CC_DRIVER_FEATURE_SELECT, 0);
    this.w32(CC_DRIVER_FEATURE, Number(f & 0xffffffffn));
    this.w32(CC_DRIVER_FEATURE_SELECT, 1);
    this.w32(CC_DRIVER_FEATURE, Number(f >> 32n));
  }

  /** MSI-X table entries: message data = vector number, unmasked; then enable MSI-X. */
  private setupMsix(cap: number, vectors: number): void {
    const table = this.bus.configRead(cap + MSIX_CAP_TABLE, 4) & ~MSIX_BIR_MASK;
    for (let v = 0; v < vectors; v++) {
      const e = table + v * MSIX_ENTRY_SIZE;
      this.bus.mmioWrite(e, 4, MSI_ADDRESS);
      this.bus.mmioWrite(e + 4, 4, 0);
      this.bus.mmioWrite(e + 8, 4, v);
      this.bus.mmioWrite(e + 12, 4, 0);
    }
    this.bus.configWrite(cap + MSIX_CAP_CONTROL, 2, MSIX_CTRL_ENABLE);
  }

  private setupQueue(q: number, size: number | undefined, indirect: boolean, eventIdx: boolean): void {
    this.w16(CC_QUEUE_SELECT, q);
    const max = this.r16(CC_QUEUE_SIZE);
    if (max === 0) throw new Error(`virtio-blk: queue ${q} does not exist`);
    const n = Math.min(size ?? max, max);
    this.w16(CC_QUEUE_SIZE, n);
    const vq = this.has(V.F_RING_PACKED) ? new PackedQueue(this.guest, n, indirect, eventIdx) : new SplitQueue(this.guest, n, indirect, eventIdx);
    vq.armInterrupts();
    this.w64(CC_QUEUE_DESC, vq.ring.desc);
    this.w64(CC_QUEUE_DRIVER, vq.ring.driver);
    this.w64(CC_QUEUE_DEVICE, vq.ring.device);
    this.w16(CC_QUEUE_MSIX_VECTOR, q + 1);
    if (this.r16(CC_QUEUE_MSIX_VECTOR) !== q + 1) throw new Error(`virtio-blk: queue ${q}: MSI-X vector refused`);
    this.w16(CC_QUEUE_ENABLE, 1);
    if (this.r16(CC_QUEUE_ENABLE) !== 1) throw new Error(`virtio-blk: queue ${q} could not be enabled`);
    this.notifyAddr[q] = this.notifyBase + this.r16(CC_QUEUE_NOTIFY_OFF) * this.notifyMult;
    this.queues.push(vq);
  }

  /** Device status as the device reports it (e.g. DEVICE_NEEDS_RESET). */
  deviceStatus(): number { return this.r8(CC_DEVICE_STATUS); }

  ring(q = 0): RingInfo { return this.queues[q]!.ring; }

  // ---- requests ----
  submit(op: BlkOp, lba: number, nblocks: number, bufGpa: number, tag: number): boolean {
    for (let i = 0; i < this.queues.length; i++) {
      const q = (this.rr + i) % this.queues.length;
      if (this.submitOn(q, op, lba, nblocks, bufGpa, tag)) { this.rr = (q + 1) % this.queues.length; return true; }
    }
    return false;
  }

  /** Queue a block request on queue q; false when that queue is full. */
  submitOn(q: number, op: BlkOp, lba: number, nblocks: number, bufGpa: number, tag: number): boolean {
    const vq = this.queues[q]!;
    const spb = this.blockSize / 512; // sectors are 512 bytes whatever the block size (§5.2.6)
    const bytes = nblocks * this.blockSize;
    switch (op) {
      case BlkOp.READ: return this.request(vq, V.BLK_T_IN, lba * spb, bufGpa, bytes, true, tag);
      case BlkOp.WRITE: return this.request(vq, V.BLK_T_OUT, lba * spb, bufGpa, bytes, false, tag);
      case BlkOp.FLUSH: return this.request(vq, V.BLK_T_FLUSH, 0, 0, 0, false, tag);
      case BlkOp.DISCARD: case BlkOp.WRITE_ZEROES: {
        const type = op === BlkOp.DISCARD ? V.BLK_T_DISCARD : V.BLK_T_WRITE_ZEROES;
        return this.request(vq, type, 0, 0, 0, false, tag, { sector: lba * spb, num: nblocks * spb });
      }
      default: return false;
    }
  }

  /** GET_ID into a guest buffer of `len` bytes (the serial is up to 20 bytes). */
  getId(bufGpa: number, len: number, tag: number, q = 0): boolean {
    return this.request(this.queues[q]!, V.BLK_T_GET_ID, 0, bufGpa, len, true, tag);
  }

  // Reused descriptor lists (add() copies them into the ring): no allocation per request.
  private readonly sg2: Sg[] = [0, 1].map(() => ({ addr: 0, len: 0, write: false }));
  private readonly sg3: Sg[] = [0, 1, 2].map(() => ({ addr: 0, len: 0, write: false }));

  /** header [+ discard/write-zeroes segment | + data of dataLen bytes] + status. */
  private request(vq: VQueue, type: number, sector: number, dataAddr: number, dataLen: number, dataWrite: boolean,
                  tag: number, dwz?: { sector: number; num: number }): boolean {
    const sgs = dwz || dataLen > 0 ? this.sg3 : this.sg2;
    if (!vq.canTake(sgs.length)) return false;
    const id = vq.peekId(), slot = vq.slot(id);
    this.fillSlot(vq, id, type, sector, dwz);
    setSg(sgs[0]!, slot, V.BLK_HDR_SIZE, false);
    if (dwz) setSg(sgs[1]!, slot + SLOT_PAYLOAD, V.DWZ_SEG_SIZE, false);
    else if (dataLen > 0) setSg(sgs[1]!, dataAddr, dataLen, dataWrite);
    setSg(sgs[sgs.length - 1]!, slot + SLOT_STATUS, 1, true);
    vq.add(sgs, tag);
    return true;
  }

  private fillSlot(vq: VQueue, id: number, type: number, sector: number, dwz?: { sector: number; num: number }): void {
    const dv = this.guest.dv, s = vq.slot(id);
    dv.setUint32(s + V.BLK_HDR_TYPE, type, true);
    dv.setUint32(s + 4, 0, true);
    setU64(dv, s + V.BLK_HDR_SECTOR, sector);
    if (dwz) {
      setU64(dv, s + SLOT_PAYLOAD + V.DWZ_SECTOR, dwz.sector);
      dv.setUint32(s + SLOT_PAYLOAD + V.DWZ_NUM, dwz.num, true);
      dv.setUint32(s + SLOT_PAYLOAD + V.DWZ_FLAGS, 0, true);
    }
    this.guest.u8[s + SLOT_STATUS] = STATUS_UNSET;
  }

  /**
   * Raw chain for tests that build hostile requests: the given descriptors go into queue q
   * as they are (no header or status added). Returns the id, or -1 when the queue is full.
   */
  submitRaw(q: number, sgs: Sg[], tag: number): number {
    const vq = this.queues[q]!;
    if (!vq.canTake(sgs.length)) return -1;
    return vq.add(sgs, tag);
  }

  /** The id the next request on queue q will get (its slot address is known before it is added). */
  nextId(q = 0): number { return this.queues[q]!.peekId(); }

  /** The header/status slot of id on queue q (guest address), for raw requests. */
  slot(q: number, id: number): number { return this.queues[q]!.slot(id); }

  kick(): void {
    this.queues.forEach((vq, q) => {
      if (vq.publish()) { this.notifies++; this.bus.mmioWrite(this.notifyAddr[q]!, 2, q); }
    });
  }

  reap(done: (tag: number, status: number) => void): number {
    let n = 0;
    for (const vq of this.queues) n += vq.reap(done);
    return n;
  }

  /** Ask for interrupts on queue q (default) or suppress them (NO_INTERRUPT / used_event / DISABLE). */
  setInterrupts(q: number, on: boolean): void { this.queues[q]!.interrupts = on; this.queues[q]!.armInterrupts(); }
}
