// A card memory image with the all-zero 64 KiB pages left out. Most of a fresh guest's
// RAM and of a RAM disk is zeros, so an image is small and quick to take: zero pages
// are found with memcmp (Buffer.compare) where Node provides it, and a restore writes
// only the pages that differ from zero in either the image or the memory.
const PAGE = 0x10000;

export interface MemoryImage {
  /** Bytes of memory the image covers (a whole number of 64 KiB pages). */
  bytes: number;
  /** One byte per page: 1 when the page is in `data`. */
  present: Uint8Array;
  /** The present pages, in order. */
  data: Uint8Array;
}

type Cmp = (u8: Uint8Array, at: number) => boolean;

const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, o: number, l: number): Uint8Array; compare(a: Uint8Array, b: Uint8Array): number; alloc(n: number): Uint8Array } }).Buffer;
const ZERO = NodeBuffer ? NodeBuffer.alloc(PAGE) : new Uint8Array(PAGE);

const isZero: Cmp = NodeBuffer
  ? (u8, at) => NodeBuffer.compare(NodeBuffer.from(u8.buffer, u8.byteOffset + at, PAGE), ZERO) === 0
  : (u8, at) => {
    const w = new Float64Array(u8.buffer, u8.byteOffset + at, PAGE / 8); // any non-zero bit pattern is != 0 except -0
    for (let i = 0; i < w.length; i++) if (w[i] !== 0 || Object.is(w[i], -0)) return false;
    return true;
  };

/** Take an image of u8[0, bytes). */
export function captureImage(u8: Uint8Array, bytes: number): MemoryImage {
  if (bytes % PAGE !== 0 || bytes > u8.length) throw new RangeError(`memory image: ${bytes} bytes is not whole 64 KiB pages of the memory`);
  const pages = bytes / PAGE;
  const present = new Uint8Array(pages);
  let n = 0;
  for (let p = 0; p < pages; p++) if (!isZero(u8, p * PAGE)) { present[p] = 1; n++; }
  const data = new Uint8Array(n * PAGE);
  for (let p = 0, k = 0; p < pages; p++) {
    if (present[p]) { data.set(u8.subarray(p * PAGE, (p + 1) * PAGE), k * PAGE); k++; }
  }
  return { bytes, present, data };
}

/** Write an image back into u8 (which must be at least img.bytes long). */
export function restoreImage(img: MemoryImage, u8: Uint8Array): void {
  const pages = img.bytes / PAGE;
  if (img.present.length !== pages || img.data.length !== img.present.reduce((a, b) => a + b, 0) * PAGE) {
    throw new RangeError("memory image: page map and data disagree");
  }
  for (let p = 0, k = 0; p < pages; p++) {
    if (img.present[p]) { u8.set(img.data.subarray(k * PAGE, (k + 1) * PAGE), p * PAGE); k++; }
    else if (!isZero(u8, p * PAGE)) u8.fill(0, p * PAGE, (p + 1) * PAGE);
  }
}
