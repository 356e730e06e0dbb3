// Memory backend: the disk's bytes in a Uint8Array. When the array is a view of a
// card's memory (Card places RAM disks there), the firmware serves it inline.
import { type BlockBackend, checkRange } from "./types.js";

export class MemoryBackend implements BlockBackend {
  readonly kind = "memory";
  readonly blocks: number;
  constructor(readonly bytes: Uint8Array, readonly blockSize: number) {
    if (blockSize !== 512 && blockSize !== 4096) throw new RangeError(`memory backend: block size ${blockSize} is not 512 or 4096`);
    if (bytes.length % blockSize !== 0) throw new RangeError(`memory backend: ${bytes.length} bytes is not a whole number of ${blockSize}-byte blocks`);
    this.blocks = bytes.length / blockSize;
  }
  read(lba: number, dst: Uint8Array): void {
    checkRange(this, lba, Math.ceil(dst.length / this.blockSize));
    const o = lba * this.blockSize;
    dst.set(this.bytes.subarray(o, o + dst.length));
  }
  write(lba: number, src: Uint8Array): void {
    checkRange(this, lba, Math.ceil(src.length / this.blockSize));
    this.bytes.set(src, lba * this.blockSize);
  }
  flush(): void {}
  discard(lba: number, nblocks: number): void { this.writeZeroes(lba, nblocks); }
  writeZeroes(lba: number, nblocks: number): void {
    checkRange(this, lba, nblocks);
    this.bytes.fill(0, lba * this.blockSize, (lba + nblocks) * this.blockSize);
  }
  close(): void {}
}
