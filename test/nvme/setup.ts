// Shared bring-up for the NVMe tests: a card with one guest and one memory disk, the
// NVMe device model on function 0, and the guest driver.
import { Card } from "../../host/card.js";
import { NvmePci } from "../../host/pcie/nvme-pci.js";
import { NvmeDriver, type NvmeDriverOptions } from "../../host/guest/nvme.js";
import { BlkOp } from "../../host/guest/driver.js";

export interface Rig { card: Card; dev: NvmePci; drv: NvmeDriver }

export const DISK_BYTES = 4 << 20;
export const GUEST_BYTES = 8 << 20;

export async function rig(blockSize = 4096, opts: NvmeDriverOptions & { ioQueues?: number } = {}): Promise<Rig> {
  const card = await Card.create({ guests: [{ ramBytes: GUEST_BYTES }], disks: [{ kind: "memory", bytes: DISK_BYTES, blockSize }] });
  const dev = NvmePci.attach(card, 0, 0, opts.ioQueues ?? 1);
  const drv = NvmeDriver.open(dev, opts);
  return { card, dev, drv };
}

/** Run the card until `n` completions were reaped from the driver (throws when stuck). */
export function runUntil(r: Rig, n: number, done: (tag: number, status: number) => void = () => {}): void {
  let got = 0;
  for (let i = 0; i < 1000 && got < n; i++) {
    r.card.poll();
    got += r.drv.reap(done);
  }
  if (got < n) throw new Error(`only ${got} of ${n} completions`);
}

/** Submit one request, kick, run to its completion; returns its status. */
export function io(r: Rig, op: BlkOp, lba: number, nblocks: number, buf: number): number {
  let status = -1;
  if (!r.drv.submit(op, lba, nblocks, buf, 7)) throw new Error("queue full");
  r.drv.kick();
  runUntil(r, 1, (_t, s) => { status = s; });
  return status;
}

/** The disk's bytes (a memory disk lives in card memory). */
export function diskBytes(r: Rig): Uint8Array {
  const d = r.card.layout.disks[0]!;
  return r.card.u8.subarray(d.base, d.base + d.size);
}

export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}
