// Data-path copy: 4 KiB reads out of a RAM disk through the request pool and blkSubmit,
// beside a bare memory.copy of the same random blocks.
import { Card } from "../card.js";
import { compare, type BenchOptions, type Figure } from "./harness.js";

const BS = 4096;
const DISK = 256 * 1024 * 1024; // far larger than the caches: the copies come from DRAM
const NBUF = 256, PER_CALL = 4096;

export async function benchCopy(o: BenchOptions): Promise<Figure> {
  const card = await Card.create({ guests: [{ ramBytes: NBUF * BS + 65536 }], disks: [{ kind: "memory", bytes: DISK, blockSize: BS }] });
  const disk = card.layout.disks[0]!;
  // Touch every page of the disk: a never-written page is the kernel's shared zero page, always cached.
  card.u8.fill(0xa5, disk.base, disk.base + DISK);
  const dst = card.guests[0]!.base;
  let seed = 1;
  return compare(
    "data-path copy (4 KiB random reads, 256 MiB RAM disk)", "GB/s",
    () => BS * card.fw.benchDataPath(0, dst, NBUF, BS, PER_CALL, seed++),
    "memory.copy, same blocks",
    () => BS * card.fw.benchRawCopy(disk.base, DISK / BS, dst, NBUF, BS, PER_CALL, seed++),
    o, 1e-9,
  );
}
