// First-fit allocator over a controller's staging window (memmap NIC_STAGE_*): the only NIC
// memory its WQEs may name. Regions are freed out of order (responses complete per QP), so a
// sorted free list with coalescing; everything is offsets inside the window, deterministic.

export const STAGE_ALIGN = 64;

export class StageAllocator {
  // Free extents sorted by offset, never adjacent (coalesced on free).
  private readonly offs: number[] = [];
  private readonly lens: number[] = [];
  private used = 0;
  private hw = 0;

  constructor(readonly size: number) {
    if (size <= 0 || size % STAGE_ALIGN !== 0) throw new RangeError(`staging: size ${size} is not a positive multiple of ${STAGE_ALIGN}`);
    this.offs.push(0);
    this.lens.push(size);
  }

  /** Bytes handed out and not freed. */
  get inUse(): number { return this.used; }

  /** End of the furthest region ever handed out: the window's bytes a controller may have written (the fuzz harness restores them). */
  get highWater(): number { return this.hw; }

  /** The rounded size alloc(n) takes. */
  static rounded(n: number): number { return Math.ceil(Math.max(n, 1) / STAGE_ALIGN) * STAGE_ALIGN; }

  /** Offset of n bytes (aligned), or -1 when no free extent is large enough. */
  alloc(n: number): number {
    const want = StageAllocator.rounded(n);
    for (let i = 0; i < this.offs.length; i++) {
      const len = this.lens[i]!;
      if (len < want) continue;
      const off = this.offs[i]!;
      if (len === want) { this.offs.splice(i, 1); this.lens.splice(i, 1); }
      else { this.offs[i] = off + want; this.lens[i] = len - want; }
      this.used += want;
      if (off + want > this.hw) this.hw = off + want;
      return off;
    }
    return -1;
  }

  /** Give back [off, off + n) from alloc(n). A region not handed out throws (a controller bug). */
  free(off: number, n: number): void {
    const len = StageAllocator.rounded(n);
    let i = 0;
    while (i < this.offs.length && this.offs[i]! < off) i++;
    const prevEnd = i > 0 ? this.offs[i - 1]! + this.lens[i - 1]! : 0;
    if (off < prevEnd || off + len > (i < this.offs.length ? this.offs[i]! : this.size) || off % STAGE_ALIGN !== 0) {
      throw new Error(`staging: free of [${off}, +${len}) that is not allocated`);
    }
    this.used -= len;
    const joinPrev = i > 0 && prevEnd === off;
    const joinNext = i < this.offs.length && this.offs[i] === off + len;
    if (joinPrev && joinNext) {
      this.lens[i - 1]! += len + this.lens[i]!;
      this.offs.splice(i, 1); this.lens.splice(i, 1);
    } else if (joinPrev) this.lens[i - 1]! += len;
    else if (joinNext) { this.offs[i] = off; this.lens[i]! += len; }
    else { this.offs.splice(i, 0, off); this.lens.splice(i, 0, len); }
  }

  /** Free extents, for tests and stats. */
  extents(): [number, number][] { return this.offs.map((o, i) => [o, this.lens[i]!]); }
}
