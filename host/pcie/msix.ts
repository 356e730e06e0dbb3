// MSI-X (PCI Local Bus 3.0 §6.8.2): capability in config space, table and PBA in
// BAR0 (the function's register file in card memory). The firmware raises vectors;
// this model turns them into {address, data} messages to the guest, or holds them
// pending (PBA) while MSI-X is disabled, the function or the vector is masked, or bus
// mastering is off, and sends them when that ends.
import { PciConfig, PCI_CAP_ID_MSIX } from "./config.js";
import type { GuestRam } from "../guest/ram.js";

export const MSIX_ENTRY_SIZE = 16; // address lo, address hi, data, vector control
export const MSIX_VECTOR_CTRL_MASK = 1; // vector control bit 0
export const MSIX_CTRL_ENABLE = 1 << 15; // message control
export const MSIX_CTRL_FUNC_MASK = 1 << 14;

export class Msix {
  readonly capOffset: number;
  private readonly tableAt: number;
  private readonly pbaAt: number;
  /** Messages sent to the guest, for counters and tests. */
  sent = 0;

  constructor(
    private readonly cfg: PciConfig,
    private readonly u8: Uint8Array,
    private readonly dv: DataView,
    barBase: number,
    readonly vectors: number,
    readonly tableOff: number,
    readonly pbaOff: number,
    private readonly guest: GuestRam,
  ) {
    const body = new Uint8Array(10);
    const b = new DataView(body.buffer);
    b.setUint16(0, vectors - 1, true); // table size, N-1 encoded
    b.setUint32(2, tableOff, true); // BIR 0
    b.setUint32(6, pbaOff, true); // BIR 0
    const w = new Uint8Array(10);
    w[1] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FUNC_MASK) >>> 8;
    this.capOffset = cfg.addCapability(PCI_CAP_ID_MSIX, body, w);
    this.tableAt = barBase + tableOff;
    this.pbaAt = barBase + pbaOff;
    // Enabling MSI-X, clearing the function mask or turning bus mastering on releases pending messages.
    const chained = cfg.onWrite;
    cfg.onWrite = (o, n) => { chained(o, n); this.release(); };
    // Reset state: every vector masked (§6.8.2.9).
    for (let v = 0; v < vectors; v++) dv.setUint32(this.tableAt + v * MSIX_ENTRY_SIZE + 12, MSIX_VECTOR_CTRL_MASK, true);
  }

  private get control(): number { return this.cfg.dv.getUint16(this.capOffset + 2, true); }
  get enabled(): boolean { return (this.control & MSIX_CTRL_ENABLE) !== 0; }
  get functionMasked(): boolean { return (this.control & MSIX_CTRL_FUNC_MASK) !== 0; }

  /** Is BAR offset `off` in the table or the PBA? */
  owns(off: number): boolean {
    return (off >= this.tableOff && off < this.tableOff + this.vectors * MSIX_ENTRY_SIZE) ||
      (off >= this.pbaOff && off < this.pbaOff + Math.ceil(this.vectors / 64) * 8);
  }

  /** A guest write into the table (the PBA is read-only); sends what an unmask released. */
  write(off: number, size: number, value: number): void {
    if (off < this.tableOff || off >= this.tableOff + this.vectors * MSIX_ENTRY_SIZE) return;
    const at = this.tableAt + (off - this.tableOff);
    if (size === 4) this.dv.setUint32(at, value >>> 0, true);
    else if (size === 2) this.dv.setUint16(at, value, true);
    else if (size === 1) this.u8[at] = value;
    else if (size === 8) { this.dv.setUint32(at, value % 2 ** 32, true); this.dv.setUint32(at + 4, Math.floor(value / 2 ** 32), true); }
    this.release();
  }

  read(off: number, size: number): number {
    const base = off >= this.pbaOff ? this.pbaAt + (off - this.pbaOff) : this.tableAt + (off - this.tableOff);
    return size === 4 ? this.dv.getUint32(base, true) : size === 2 ? this.dv.getUint16(base, true) : this.u8[base]!;
  }

  private masked(v: number): boolean {
    return !this.enabled || this.functionMasked || !this.cfg.busMaster ||
      (this.dv.getUint32(this.tableAt + v * MSIX_ENTRY_SIZE + 12, true) & MSIX_VECTOR_CTRL_MASK) !== 0;
  }

  pending(v: number): boolean { return (this.u8[this.pbaAt + (v >> 3)]! & (1 << (v & 7))) !== 0; }
  private setPending(v: number, on: boolean): void {
    const i = this.pbaAt + (v >> 3);
    this.u8[i] = on ? this.u8[i]! | (1 << (v & 7)) : this.u8[i]! & ~(1 << (v & 7));
  }

  /** Vectors raised by the firmware (bit v = vector v). */
  deliver(bits: number): void {
    for (; bits !== 0; bits &= bits - 1) {
      const v = 31 - Math.clz32(bits & -bits);
      if (v >= this.vectors) continue;
      if (this.masked(v)) this.setPending(v, true);
      else this.send(v);
    }
  }

  /** Send every pending vector that is no longer masked (after an unmask or enable). */
  release(): void {
    for (let v = 0; v < this.vectors; v++) if (this.pending(v) && !this.masked(v)) { this.setPending(v, false); this.send(v); }
  }

  private send(v: number): void {
    const e = this.tableAt + v * MSIX_ENTRY_SIZE;
    const addr = this.dv.getUint32(e, true) + this.dv.getUint32(e + 4, true) * 2 ** 32;
    this.sent++;
    this.guest.irq(addr, this.dv.getUint32(e + 8, true));
  }
}
