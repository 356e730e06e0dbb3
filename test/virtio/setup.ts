// Shared fixture for the virtio tests: a card with one guest and one memory disk, the
// virtio-blk PCI function and the guest driver brought up through it.
import { Card } from "../../host/card.js";
import { VirtioBlkPci, type VirtioBlkPciOptions } from "../../host/pcie/virtio-pci.js";
import { VirtioBlkDriver, type VirtioBlkDriverOptions, type Sg } from "../../host/guest/virtio-blk.js";
import type { GuestRam } from "../../host/guest/ram.js";
import { MemoryBackend } from "../../host/backends/memory.js";

export interface Rig { card: Card; dev: VirtioBlkPci; drv: VirtioBlkDriver; guest: GuestRam }

export interface RigOptions extends VirtioBlkDriverOptions {
  blockSize?: number;
  diskBytes?: number;
  guestBytes?: number;
  deviceQueues?: number;
  deviceQueueSize?: number;
  /** Serve the disk from the host (host-IO ring) instead of firmware RAM. */
  hostDisk?: boolean;
}

export async function rig(o: RigOptions = {}): Promise<Rig> {
  const card = await Card.create({
    guests: [{ ramBytes: o.guestBytes ?? 4 << 20 }],
    disks: [o.hostDisk
      ? { kind: "host", backend: new MemoryBackend(new Uint8Array(o.diskBytes ?? 1 << 20), o.blockSize ?? 512) }
      : { kind: "memory", bytes: o.diskBytes ?? 1 << 20, blockSize: o.blockSize ?? 512 }],
  });
  const dopts: VirtioBlkPciOptions = { guest: 0, disk: 0, queues: o.deviceQueues ?? o.queues ?? 1 };
  if (o.deviceQueueSize !== undefined) dopts.queueSize = o.deviceQueueSize;
  const dev = new VirtioBlkPci(card, dopts);
  const guest = card.guests[0]!;
  const drv = new VirtioBlkDriver(dev, guest, o);
  return { card, dev, drv, guest };
}

/** Poll until every submitted request came back; returns [tag, status] in completion order. */
export function drain(r: Rig, expect: number, maxPolls = 100): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < maxPolls && out.length < expect; i++) {
    r.card.poll();
    r.drv.reap((t, s) => out.push([t, s]));
  }
  return out;
}

/** Submit, kick and drain one request; returns its status. */
export function one(r: Rig, submit: () => boolean): number {
  if (!submit()) throw new Error("queue full");
  r.drv.kick();
  const done = drain(r, 1);
  if (done.length !== 1) throw new Error(`request did not complete (${done.length})`);
  return done[0]![1];
}

/** The disk's bytes (a memory disk lives in card memory; a host disk in its backend). */
export function diskBytes(r: Rig): Uint8Array {
  const d = r.card.disks[0]!;
  return (d as MemoryBackend).bytes;
}

export const SLOT_STATUS = 32; // status byte inside a request slot (host/guest/virtio-blk.ts)

export interface RawRequest {
  type: number;
  sector?: bigint;
  data?: Sg[];
  q?: number;
  /** Header descriptor length (16 is right). */
  hdrLen?: number;
  hdrWrite?: boolean;
  /** false: the status descriptor is device-readable (wrong). */
  statusWrite?: boolean;
  /** Leave the status descriptor out. */
  noStatus?: boolean;
}

/** Queue a request with the header written by hand; returns its id and slot (status at slot + 32). */
export function raw(r: Rig, o: RawRequest): { id: number; slot: number; status: number } {
  const q = o.q ?? 0;
  const id = r.drv.nextId(q), slot = r.drv.slot(q, id);
  r.guest.dv.setUint32(slot, o.type, true);
  r.guest.dv.setUint32(slot + 4, 0, true);
  r.guest.dv.setBigUint64(slot + 8, o.sector ?? 0n, true);
  r.guest.u8[slot + SLOT_STATUS] = 0xff;
  const sgs: Sg[] = [{ addr: slot, len: o.hdrLen ?? 16, write: o.hdrWrite ?? false }, ...(o.data ?? [])];
  if (!o.noStatus) sgs.push({ addr: slot + SLOT_STATUS, len: 1, write: o.statusWrite ?? true });
  const got = r.drv.submitRaw(q, sgs, 1000 + id);
  if (got !== id) throw new Error(`raw: got id ${got}, expected ${id}`);
  return { id, slot, status: slot + SLOT_STATUS };
}

/** Byte arrays equal (fast; vitest's toEqual walks typed arrays element by element). */
export function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** Deterministic bytes (xorshift32). */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}
