// Shared bring-up for the NVMe tests: a card with one guest and one memory disk, the
// NVMe device model on function 0, and the guest driver.
import { Card } from "../../host/card.js";
import { NvmePci } from "../../host/pcie/nvme-pci.js";
import { NvmeDriver, type NvmeDriverOptions } from "../../host/guest/nvme.js";
import { BlkOp } from "../../host/guest/driver.js";
import { MemoryBackend } from "../../host/backends/memory.js";

export interface Rig { card: Card; dev: NvmePci; drv: NvmeDriver }

export const DISK_BYTES = 4 << 20;
export const GUEST_BYTES = 2 << 20;

export interface RigOptions extends NvmeDriverOptions {
  /** I/O queue pairs the function offers (default: opts.ioQueues or 1). */
  funcQueues?: number;
  /** Disk served by the host (async, through the host-IO ring) instead of inline. */
  hostDisk?: boolean;
}

export const CANARY = 0xa5;

/**
 * Card with guest 0 (the VM under test) and guest 1 (a canary VM whose window follows
 * guest 0's and is filled with CANARY: any access past guest 0's window lands there).
 */
export async function rig(blockSize = 4096, opts: RigOptions = {}): Promise<Rig> {
  const disk = opts.hostDisk
    ? { kind: "host" as const, backend: new MemoryBackend(new Uint8Array(DISK_BYTES), blockSize) }
    : { kind: "memory" as const, bytes: DISK_BYTES, blockSize };
  const card = await Card.create({ guests: [{ ramBytes: GUEST_BYTES }, { ramBytes: 1 << 16 }], disks: [disk] });
  card.guests[1]!.u8.fill(CANARY);
  const dev = new NvmePci(card, { guest: 0, disk: 0, ioQueues: opts.funcQueues ?? opts.ioQueues ?? 1 });
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

/** The disk's bytes (a memory disk lives in card memory; a host disk in its backend). */
export function diskBytes(r: Rig): Uint8Array {
  const d = r.card.layout.disks[0];
  if (!d) return (r.card.disks[0] as MemoryBackend).bytes;
  return r.card.u8.subarray(d.base, d.base + d.size);
}

/** Copies of guest 0's RAM, the canary guest's RAM and the disk. */
export function snapshot(r: Rig): Uint8Array[] {
  return [r.card.guests[0]!.u8.slice(), r.card.guests[1]!.u8.slice(), diskBytes(r).slice()];
}

/**
 * Since `before`: the canary VM and the disk are untouched, and guest 0's RAM changed
 * only inside `allowed` [start, end) ranges (the CQEs the controller wrote, the
 * buffers the test addressed).
 */
export function expectOnlyChanged(r: Rig, before: Uint8Array[], allowed: [number, number][] = []): void {
  const [g0, g1, disk] = before;
  const now = r.card.guests[0]!.u8.slice();
  for (const [a, b] of allowed) now.set(g0!.subarray(a, b), a); // allowed ranges may differ
  if (!sameBytes(now, g0!)) {
    const at = now.findIndex((x, i) => x !== g0![i]);
    throw new Error(`guest RAM changed outside the allowed ranges, first at 0x${at.toString(16)}`);
  }
  if (!sameBytes(r.card.guests[1]!.u8, g1!)) throw new Error("canary VM's RAM changed");
  if (!sameBytes(diskBytes(r), disk!)) throw new Error("disk changed");
}

/** [start, end) of the CQE slots of queue pair qid that completions since `head` used. */
export function cqeRange(r: Rig, qid: number): [number, number] {
  const q = qid === 0 ? r.drv.admin : r.drv.io[qid - 1]!;
  return [q.cqGpa, q.cqGpa + q.size * 16];
}

export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}

/** Byte-equality that stays fast on large buffers (vitest's deep equality is slow there). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
