// Snapshot files (Node): a small header, the structured part (node:v8 serialization:
// typed arrays, bigints and maps survive), then each card memory image with all-zero
// 64 KiB pages left out (a fresh guest's RAM is mostly zeros).
//
//   "WDPUSNP1" | u32 meta length | meta | per card: u32 pages, page bitmap (1 byte per page), non-zero pages
import { openSync, writeSync, closeSync, readFileSync } from "node:fs";
import { serialize, deserialize } from "node:v8";
import { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type Snapshot } from "./snapshot.js";

const MAGIC = "WDPUSNP1";
const PAGE = 0x10000;

function isZero(u8: Uint8Array, at: number): boolean {
  const w = new BigUint64Array(u8.buffer, u8.byteOffset + at, PAGE / 8);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0n) return false;
  return true;
}

/** Write a snapshot to `path`. */
export function writeSnapshotFile(path: string, s: Snapshot): void {
  const { memories, ...meta } = s;
  const m = serialize(meta);
  const fd = openSync(path, "w");
  try {
    const head = Buffer.alloc(12);
    head.write(MAGIC, 0, "latin1");
    head.writeUInt32LE(m.length, 8);
    writeSync(fd, head);
    writeSync(fd, m);
    const count = Buffer.alloc(4);
    count.writeUInt32LE(memories.length);
    writeSync(fd, count);
    for (const mem of memories) {
      if (mem.byteLength % PAGE !== 0) throw new Error(`snapshot: memory image of ${mem.byteLength} bytes is not whole 64 KiB pages`);
      const pages = mem.byteLength / PAGE;
      const map = Buffer.alloc(4 + pages);
      map.writeUInt32LE(pages);
      for (let p = 0; p < pages; p++) map[4 + p] = isZero(mem, p * PAGE) ? 0 : 1;
      writeSync(fd, map);
      for (let p = 0; p < pages; p++) if (map[4 + p]) writeSync(fd, mem, p * PAGE, PAGE);
    }
  } finally {
    closeSync(fd);
  }
}

/** Read a snapshot written by writeSnapshotFile; errors name the file and what is wrong. */
export function readSnapshotFile(path: string): Snapshot {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch (e) {
    throw new Error(`snapshot: cannot read ${path}: ${(e as Error).message}`);
  }
  if (b.length < 16 || b.toString("latin1", 0, 8) !== MAGIC) throw new Error(`snapshot: ${path} is not a wasm-dpu snapshot file`);
  const mlen = b.readUInt32LE(8);
  if (12 + mlen + 4 > b.length) throw new Error(`snapshot: ${path} is truncated`);
  const meta = deserialize(b.subarray(12, 12 + mlen)) as Omit<Snapshot, "memories">;
  if (meta.format !== SNAPSHOT_FORMAT || meta.version !== SNAPSHOT_VERSION) {
    throw new Error(`snapshot: ${path} has format ${String(meta.format)} version ${String(meta.version)}, this build reads ${SNAPSHOT_FORMAT} version ${SNAPSHOT_VERSION}`);
  }
  let at = 12 + mlen;
  const n = b.readUInt32LE(at); at += 4;
  const memories: Uint8Array[] = [];
  for (let c = 0; c < n; c++) {
    if (at + 4 > b.length) throw new Error(`snapshot: ${path} is truncated`);
    const pages = b.readUInt32LE(at); at += 4;
    const map = b.subarray(at, at + pages); at += pages;
    const mem = new Uint8Array(pages * PAGE);
    for (let p = 0; p < pages; p++) {
      if (!map[p]) continue;
      if (at + PAGE > b.length) throw new Error(`snapshot: ${path} is truncated`);
      mem.set(b.subarray(at, at + PAGE), p * PAGE);
      at += PAGE;
    }
    memories.push(mem);
  }
  return { ...meta, memories };
}
