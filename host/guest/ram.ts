// A VM's RAM: its window of the card's memory (memmap GUEST windows), as the guest
// sees it: guest physical address 0 is card offset `base`.
export type IrqSink = (address: number, data: number) => void;

export class GuestRam {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  private next = 0x1000; // keep page 0 unused: a zero address in a ring is then always a bug
  /** Interrupt sink: MSI-X messages addressed to this VM (address, data). */
  irq: IrqSink = () => {};
  constructor(readonly index: number, buffer: ArrayBuffer, readonly base: number, readonly size: number) {
    this.u8 = new Uint8Array(buffer, base, size);
    this.dv = new DataView(buffer, base, size);
  }
  /** Bump-allocate `bytes` of guest RAM aligned to `align`; returns the guest physical address. */
  alloc(bytes: number, align = 4096): number {
    const gpa = Math.ceil(this.next / align) * align;
    if (gpa + bytes > this.size) {
      throw new RangeError(`guest ${this.index}: out of RAM (${bytes} bytes wanted, ${this.size - gpa} left of ${this.size})`);
    }
    this.next = gpa + bytes;
    return gpa;
  }
}
