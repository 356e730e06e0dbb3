// Snapshot files (Node): a small header, the structured part (node:v8 serialization:
// typed arrays, bigints and maps survive), then each card's memory image (zero pages
// already left out, host/snapshot/image.ts).
//
//   "WDPUSNP1" | u32 meta length | meta | u32 cards | per card: f64 bytes, u32 pages, page map (1 byte per page), present pages
import { openSync, writeSync, closeSync, readFileSync } from "node:fs";
import { serialize, deserialize } from "node:v8";
import { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type Snapshot } from "./snapshot.js";
import type { MemoryImage } from "./image.js";

const MAGIC = "WDPUSNP1";
const PAGE = 0x10000;

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
    for (const img of memories) {
      const h = Buffer.alloc(12);
      h.writeDoubleLE(img.bytes, 0);
      h.writeUInt32LE(img.present.length, 8);
      writeSync(fd, h);
      writeSync(fd, img.present);
      writeSync(fd, img.data);
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
  const truncated = () => new Error(`snapshot: ${path} is truncated`);
  const mlen = b.readUInt32LE(8);
  if (12 + mlen + 4 > b.length) throw truncated();
  const meta = deserialize(b.subarray(12, 12 + mlen)) as Omit<Snapshot, "memories">;
  if (meta.format !== SNAPSHOT_FORMAT || meta.version !== SNAPSHOT_VERSION) {
    throw new Error(`snapshot: ${path} has format ${String(meta.format)} version ${String(meta.version)}, this build reads ${SNAPSHOT_FORMAT} version ${SNAPSHOT_VERSION}`);
  }
  let at = 12 + mlen;
  const n = b.readUInt32LE(at); at += 4;
  const memories: MemoryImage[] = [];
  for (let c = 0; c < n; c++) {
    if (at + 12 > b.length) throw truncated();
    const bytes = b.readDoubleLE(at);
    const pages = b.readUInt32LE(at + 8); at += 12;
    if (pages * PAGE !== bytes || at + pages > b.length) throw truncated();
    const present = new Uint8Array(b.subarray(at, at + pages)); at += pages;
    let k = 0;
    for (let p = 0; p < pages; p++) k += present[p]!;
    if (at + k * PAGE > b.length) throw truncated();
    const data = new Uint8Array(b.subarray(at, at + k * PAGE)); at += k * PAGE;
    memories.push({ bytes, present, data });
  }
  return { ...meta, memories };
}
