// A guest driver that skips the firmware: it serves requests straight from a disk
// backend at reap time. For testing the job and the run loop on their own.
import { BlkOp, type BlockDriver } from "../../host/guest/driver.js";
import type { BlockBackend } from "../../host/backends/types.js";
import type { GuestRam } from "../../host/guest/ram.js";

export class FakeDriver implements BlockDriver {
  readonly name = "fake";
  readonly blockSize: number;
  readonly capacityBlocks: number;
  private queued: number[][] = [];
  private published: number[][] = [];
  kicks = 0;
  /** Return this status instead of doing the IO, for IOs whose lba matches. */
  failLba = -1;
  failStatus = 1;

  constructor(private readonly disk: BlockBackend, private readonly ram: GuestRam, readonly maxInflight = 64) {
    this.blockSize = disk.blockSize;
    this.capacityBlocks = disk.blocks;
  }

  submit(op: BlkOp, lba: number, nblocks: number, bufGpa: number, tag: number): boolean {
    if (this.queued.length + this.published.length >= this.maxInflight) return false;
    this.queued.push([op, lba, nblocks, bufGpa, tag]);
    return true;
  }

  kick(): void {
    this.kicks++;
    this.published.push(...this.queued);
    this.queued = [];
  }

  reap(done: (tag: number, status: number) => void): number {
    const all = this.published;
    this.published = [];
    for (const [op, lba, nblocks, gpa, tag] of all) {
      if (lba === this.failLba) { done(tag!, this.failStatus); continue; }
      const buf = this.ram.u8.subarray(gpa!, gpa! + nblocks! * this.blockSize);
      if (op === BlkOp.READ) this.disk.read(lba!, buf);
      else this.disk.write(lba!, buf);
      done(tag!, 0);
    }
    return all.length;
  }
}
