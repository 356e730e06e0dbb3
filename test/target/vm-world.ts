// The whole path for tests: a DPU card with a VM driver (virtio-blk or NVMe) on a remote disk,
// a storage-side NIC card with its controllers over a memory backend, a Fabric between them, and
// the NVMe-oF association brought up; step() is one round of everything.
import { expect } from "vitest";
import { Card } from "../../host/card.js";
import { Fabric } from "../../host/fabric/fabric.js";
import type { Link, LinkOptions } from "../../host/fabric/link.js";
import { MemoryBackend } from "../../host/backends/memory.js";
import { VirtioBlkPci } from "../../host/pcie/virtio-pci.js";
import { VirtioBlkDriver } from "../../host/guest/virtio-blk.js";
import { NvmePci } from "../../host/pcie/nvme-pci.js";
import { NvmeDriver } from "../../host/guest/nvme.js";
import type { BlockDriver } from "../../host/guest/driver.js";
import { connectController, registerGuest, attachDisk } from "../../host/nvmeof/initiator.js";
import { StorageNic } from "../../host/target/nic.js";
import { DEFAULT_SUBNQN } from "../../host/target/subsystem.js";
import * as F from "../../assembly/nvmeof/defs.js";
import { ipWire, macHi, macLo, HOST, TARGET } from "../rdma/cm-pair.js";

export const RAM = 4 << 20;

export interface World { host: Card; tcard: Card; nic: StorageNic; disk: Uint8Array; drv: BlockDriver; step: () => void; now: number; link: Link }

export async function world(o: { front?: "virtio" | "nvme"; bs?: 512 | 4096; blocks?: number; protection?: boolean; mtu?: number; link?: LinkOptions; seed?: number; controllers?: number; ioQueues?: number } = {}): Promise<World> {
  const bs = o.bs ?? 512, blocks = o.blocks ?? 8192;
  const host = await Card.create({ guests: [{ ramBytes: RAM }], disks: [{ kind: "nvmeof", blockSize: bs, blocks }] });
  const tcard = await Card.create({ guests: [], disks: [] });
  const fabric = new Fabric({ seed: o.seed ?? 5 });
  const link = fabric.connect({ card: host, port: 0 }, { card: tcard, port: 0 }, { gbps: 100, latencyNs: 2000, ...o.link });
  expect(host.fw.rdmaCmInit(ipWire(HOST.ip), macHi(HOST.mac), macLo(HOST.mac))).toBe(0);
  expect(tcard.fw.rdmaCmInit(ipWire(TARGET.ip), macHi(TARGET.mac), macLo(TARGET.mac))).toBe(0);
  const disk = new Uint8Array(bs * blocks);
  const nic = new StorageNic(tcard, new MemoryBackend(disk, bs), { protection: o.protection, controllers: o.controllers });
  nic.listen();
  const drv: BlockDriver = o.front === "nvme" ? NvmeDriver.open(new NvmePci(host, { guest: 0, disk: 0, ioQueues: 1 }), {})
    : new VirtioBlkDriver(new VirtioBlkPci(host, { guest: 0, disk: 0, queues: 1 }), host.guests[0]!);
  const w: World = { host, tcard, nic, disk, drv, now: 0, step: () => {}, link };
  w.step = () => {
    w.now += 1000;
    fabric.step(w.now);
    host.now = w.now;
    host.poll();
    // Before any fabric queue exists, the DPU's poll() leaves the RDMA engine alone: the CM still runs.
    if (host.fw.nvmfQueueState(0) === F.NvmfQueueState.IDLE) host.fw.rdmaPoll(1024, w.now);
    nic.step(w.now);
  };
  const ctrl = connectController({ card: host, target: { ip: TARGET.ip, mac: TARGET.mac, subnqn: DEFAULT_SUBNQN }, hostnqn: "nqn.2026-12.io.wasm-dpu:vm-host", step: w.step, mtu: o.mtu ?? 1024, ioQueues: o.ioQueues ?? 1 });
  registerGuest(host, 0);
  attachDisk(host, 0, ctrl.ioQueues[0]!, ctrl.ns);
  return w;
}

/** Step until n requests completed; their statuses by tag. */
export function settle(w: World, n: number, max = 200_000): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i < max && out.size < n; i++) {
    w.step();
    w.drv.reap((t, s) => { out.set(t, s); });
  }
  expect(out.size, "requests completed").toBe(n);
  return out;
}

export const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;
