// File backend: a disk image in a (sparse) file, served synchronously between two
// firmware polls with positional reads and writes (node:fs), so completions stay in
// the virtual clock's order (DESIGN rule 5).
//
// Created files are sized with ftruncate and stay sparse until written. A device node
// (a block device, /dev/full for failure tests) is used as is, with the size given.
// Discard and write-zeroes: Node cannot call fallocate(PUNCH_HOLE), so
//   - a range that reaches the end of the disk is deallocated by truncating the file
//     to the range's start and extending it again (the tail becomes a hole);
//   - any other range is overwritten with zeros (it reads back as zeros, but the
//     file system keeps the blocks allocated).
import * as fs from "node:fs";
import { type BlockBackend, BLOCK_SIZES, checkRange } from "./types.js";

export interface FileBackendOptions {
  path: string;
  /** Disk size in bytes; a multiple of blockSize. Omit to use an existing file's size. */
  bytes?: number;
  blockSize: number;
  /** Create a missing file and extend a shorter one (default true); false: it must exist at full size. */
  create?: boolean;
}

/** Zeros written per call when zeroing a range. */
const ZERO_CHUNK = 1 << 20;
let zeros: Uint8Array | undefined;

export class FileBackend implements BlockBackend {
  readonly kind = "file";
  readonly blocks: number;
  readonly blockSize: number;
  readonly path: string;
  private fd: number;
  /** True when this backend created the file: it reads as zeros until written. */
  readonly created: boolean;
  /** A regular file (not a device node): it can be truncated to punch the tail. */
  private regular = true;

  constructor(opts: FileBackendOptions) {
    const { path, blockSize } = opts;
    this.path = path;
    this.blockSize = blockSize;
    if (!(BLOCK_SIZES as readonly number[]).includes(blockSize)) {
      throw new RangeError(`file backend ${path}: block size ${blockSize} is not 512 or 4096`);
    }
    if (opts.bytes !== undefined && (!Number.isSafeInteger(opts.bytes) || opts.bytes <= 0 || opts.bytes % blockSize !== 0)) {
      throw new RangeError(`file backend ${path}: size ${opts.bytes} is not a positive multiple of the ${blockSize}-byte block size`);
    }
    [this.fd, this.created] = openImage(path, opts.create === false);
    try {
      this.blocks = this.size(opts.bytes, opts.create === false) / blockSize;
    } catch (e) {
      fs.closeSync(this.fd);
      throw e;
    }
  }

  /** Settle the file's length: extend a shorter file (sparse), never shrink a longer one. */
  private size(want: number | undefined, fixed: boolean): number {
    const st = fs.fstatSync(this.fd);
    this.regular = st.isFile();
    if (!this.regular) {
      // A device node (block device, /dev/full, ...): its size is what the caller says.
      if (want === undefined) throw new RangeError(`file backend ${this.path}: not a regular file, so its size must be given`);
      return want;
    }
    const have = st.size;
    if (want === undefined) {
      if (have === 0 || have % this.blockSize !== 0) {
        throw new RangeError(`file backend ${this.path}: file size ${have} is not a positive multiple of the ${this.blockSize}-byte block size`);
      }
      return have;
    }
    if (have > want) throw new RangeError(`file backend ${this.path}: file is ${have} bytes, larger than the requested ${want}`);
    if (have < want) {
      if (fixed) throw new RangeError(`file backend ${this.path}: file is ${have} bytes, smaller than the requested ${want}`);
      fs.ftruncateSync(this.fd, want);
    }
    return want;
  }

  read(lba: number, dst: Uint8Array): void {
    checkRange(this, lba, Math.ceil(dst.length / this.blockSize));
    let pos = lba * this.blockSize;
    for (let at = 0; at < dst.length;) {
      const n = fs.readSync(this.fd, dst, at, dst.length - at, pos);
      if (n === 0) { dst.fill(0, at); break; } // past EOF of a file shrunk behind our back
      at += n;
      pos += n;
    }
  }

  write(lba: number, src: Uint8Array): void {
    checkRange(this, lba, Math.ceil(src.length / this.blockSize));
    this.writeAll(src, lba * this.blockSize);
  }

  flush(): void { fs.fsyncSync(this.fd); }

  discard(lba: number, nblocks: number): void { this.writeZeroes(lba, nblocks); }

  writeZeroes(lba: number, nblocks: number): void {
    checkRange(this, lba, nblocks);
    if (nblocks === 0) return;
    const start = lba * this.blockSize;
    const end = (lba + nblocks) * this.blockSize;
    if (this.regular && end === this.blocks * this.blockSize) {
      fs.ftruncateSync(this.fd, start); // the tail becomes a hole
      fs.ftruncateSync(this.fd, end);
      return;
    }
    zeros ??= new Uint8Array(ZERO_CHUNK);
    for (let pos = start; pos < end; pos += ZERO_CHUNK) this.writeAll(zeros.subarray(0, Math.min(ZERO_CHUNK, end - pos)), pos);
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  private writeAll(src: Uint8Array, pos: number): void {
    for (let at = 0; at < src.length;) {
      const n = fs.writeSync(this.fd, src, at, src.length - at, pos + at);
      at += n;
    }
  }
}

/** Open (or create) the image; returns the fd and whether it was created now. */
function openImage(path: string, mustExist: boolean): [number, boolean] {
  const { O_RDWR, O_CREAT, O_EXCL } = fs.constants;
  try {
    if (!mustExist) {
      try {
        return [fs.openSync(path, O_RDWR | O_CREAT | O_EXCL, 0o644), true];
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
    }
    return [fs.openSync(path, O_RDWR), false];
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`file backend ${path}: cannot open (${err.code ?? err.message})`);
  }
}
