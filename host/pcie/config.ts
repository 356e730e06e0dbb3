// PCI configuration space of one function (PCI Local Bus 3.0 §6.1, type-0 header),
// with a capability list and per-byte writable masks. BAR0 is a 64-bit memory BAR
// whose size the guest probes by writing all ones.
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04; // bit 1 memory space, bit 2 bus master
export const PCI_STATUS = 0x06; // bit 4 capabilities list
export const PCI_REVISION = 0x08;
export const PCI_CLASS_PROG = 0x09; // programming interface, subclass 0x0A, class 0x0B
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BAR0 = 0x10;
export const PCI_SUBSYS_VENDOR = 0x2c;
export const PCI_SUBSYS_ID = 0x2e;
export const PCI_CAP_PTR = 0x34;
export const PCI_INT_PIN = 0x3d;
export const PCI_STATUS_CAP_LIST = 1 << 4;
export const PCI_COMMAND_MEMORY = 1 << 1;
export const PCI_COMMAND_MASTER = 1 << 2;
export const PCI_BAR_MEM64 = 0b100; // type 10b: 64-bit memory BAR

/** Capability IDs (PCI Code and ID Assignment §2). */
export const PCI_CAP_ID_PCIE = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;
export const PCI_CAP_ID_VNDR = 0x09;

export interface PciIds { vendor: number; device: number; classCode: number; revision: number; subsysVendor: number; subsys: number }

export class PciConfig {
  readonly bytes = new Uint8Array(4096);
  readonly dv = new DataView(this.bytes.buffer);
  private readonly wmask = new Uint8Array(4096);
  private lastCap = 0;
  private capEnd = 0x40;
  /** Called after every write, with the offset and size written. */
  onWrite: (off: number, size: number) => void = () => {};

  constructor(ids: PciIds, readonly barSize: number) {
    const dv = this.dv;
    dv.setUint16(PCI_VENDOR_ID, ids.vendor, true);
    dv.setUint16(PCI_DEVICE_ID, ids.device, true);
    dv.setUint8(PCI_REVISION, ids.revision);
    dv.setUint8(PCI_CLASS_PROG, ids.classCode & 0xff);
    dv.setUint16(PCI_CLASS_PROG + 1, ids.classCode >>> 8, true);
    dv.setUint8(PCI_HEADER_TYPE, 0);
    dv.setUint16(PCI_SUBSYS_VENDOR, ids.subsysVendor, true);
    dv.setUint16(PCI_SUBSYS_ID, ids.subsys, true);
    dv.setUint8(PCI_INT_PIN, 1);
    dv.setUint32(PCI_BAR0, PCI_BAR_MEM64, true);
    this.setWritable(PCI_COMMAND, [PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | (1 << 10) /* INTx disable */, 0x04]);
    // BAR0 low: address bits above the size are writable; BAR0 high: all.
    const lowMask = ~(barSize - 1) >>> 0;
    this.setWritable(PCI_BAR0, [lowMask & 0xff, (lowMask >>> 8) & 0xff, (lowMask >>> 16) & 0xff, lowMask >>> 24, 0xff, 0xff, 0xff, 0xff]);
  }

  /** Append a capability (id, then `body` after the id/next bytes); returns its offset. */
  addCapability(id: number, body: Uint8Array, writable?: Uint8Array): number {
    const off = this.capEnd;
    if (off + 2 + body.length > 0x100) throw new RangeError("PCI config: capability list overflows the 256-byte header space");
    this.bytes[off] = id;
    this.bytes[off + 1] = 0;
    this.bytes.set(body, off + 2);
    if (writable) this.wmask.set(writable, off + 2);
    if (this.lastCap === 0) this.bytes[PCI_CAP_PTR] = off;
    else this.bytes[this.lastCap + 1] = off;
    this.lastCap = off;
    this.capEnd = (off + 2 + body.length + 3) & ~3;
    this.dv.setUint16(PCI_STATUS, this.dv.getUint16(PCI_STATUS, true) | PCI_STATUS_CAP_LIST, true);
    return off;
  }

  setWritable(off: number, mask: ArrayLike<number>): void { this.wmask.set(mask, off); }

  read(off: number, size: 1 | 2 | 4): number {
    if (off < 0 || off + size > 4096) return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    return size === 1 ? this.bytes[off]! : size === 2 ? this.dv.getUint16(off, true) : this.dv.getUint32(off, true);
  }

  /** A config write: only the writable bits change (read-only bits and reserved space ignore it). */
  write(off: number, size: 1 | 2 | 4, value: number): void {
    if (off < 0 || off + size > 4096) return;
    for (let i = 0; i < size; i++) {
      const m = this.wmask[off + i]!;
      const v = (value >>> (8 * i)) & 0xff;
      this.bytes[off + i] = (this.bytes[off + i]! & ~m) | (v & m);
    }
    this.onWrite(off, size);
  }

  get memoryEnabled(): boolean { return (this.dv.getUint16(PCI_COMMAND, true) & PCI_COMMAND_MEMORY) !== 0; }
  get busMaster(): boolean { return (this.dv.getUint16(PCI_COMMAND, true) & PCI_COMMAND_MASTER) !== 0; }
  /** The guest physical address the guest assigned to BAR0. */
  get bar0(): number { return (this.dv.getUint32(PCI_BAR0, true) & ~0xf) + this.dv.getUint32(PCI_BAR0 + 4, true) * 2 ** 32; }
}
