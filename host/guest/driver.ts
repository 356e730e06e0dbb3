// What every guest block driver (virtio-blk, NVMe, ...) offers the workload.
/** Block operations, numbered as BlkOp in assembly/blk/req.ts. */
export enum BlkOp { READ = 0, WRITE = 1, FLUSH = 2, DISCARD = 3, WRITE_ZEROES = 4 }

export interface BlockDriver {
  readonly name: string;
  readonly blockSize: number;
  readonly capacityBlocks: number;
  /** Requests that can be in flight at once. */
  readonly maxInflight: number;
  /** Queue a request (buffer at guest physical address bufGpa); false when full. Nothing is published yet. */
  submit(op: BlkOp, lba: number, nblocks: number, bufGpa: number, tag: number): boolean;
  /** Publish queued requests and notify the device: once per batch. */
  kick(): void;
  /** Walk completions; done(tag, status) with status 0 for success. Returns how many. */
  reap(done: (tag: number, status: number) => void): number;
}
