// Shared fixture for the virtio tests: a card with one guest and one memory disk, the
// virtio-blk PCI function and the guest driver brought up through it.
import { Card } from "../../host/card.js";
import { VirtioBlkPci, type VirtioBlkPciOptions } from "../../host/pcie/virtio-pci.js";
import { VirtioBlkDriver, type VirtioBlkDriverOptions } from "../../host/guest/virtio-blk.js";
import type { GuestRam } from "../../host/guest/ram.js";

export interface Rig { card: Card; dev: VirtioBlkPci; drv: VirtioBlkDriver; guest: GuestRam }

export interface RigOptions extends VirtioBlkDriverOptions {
  blockSize?: number;
  diskBytes?: number;
  guestBytes?: number;
  deviceQueues?: number;
  deviceQueueSize?: number;
}

export async function rig(o: RigOptions = {}): Promise<Rig> {
  const card = await Card.create({
    guests: [{ ramBytes: o.guestBytes ?? 4 << 20 }],
    disks: [{ kind: "memory", bytes: o.diskBytes ?? 1 << 20, blockSize: o.blockSize ?? 512 }],
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

/** Deterministic bytes (xorshift32). */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}
