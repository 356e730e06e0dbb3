// One interface for every storage backend. Offsets are in blocks of `blockSize` bytes.
// Calls are synchronous: the host serves them between two firmware polls, so the
// virtual clock and the order of completions stay deterministic.
export interface BlockBackend {
  readonly kind: string;
  readonly blockSize: number; // 512 or 4096
  readonly blocks: number;
  /** Copy `dst.length` bytes starting at block `lba` into dst. */
  read(lba: number, dst: Uint8Array): void;
  /** Write src starting at block `lba`. */
  write(lba: number, src: Uint8Array): void;
  flush(): void;
  /** Drop the blocks; they read back as zeros afterwards. */
  discard(lba: number, nblocks: number): void;
  writeZeroes(lba: number, nblocks: number): void;
  close(): void;
}

export const BLOCK_SIZES = [512, 4096] as const;

export function checkRange(b: BlockBackend, lba: number, nblocks: number): void {
  if (!Number.isInteger(lba) || !Number.isInteger(nblocks) || lba < 0 || nblocks < 0 || lba + nblocks > b.blocks) {
    throw new RangeError(`${b.kind} backend: blocks ${lba}..${lba + nblocks} outside 0..${b.blocks}`);
  }
}
