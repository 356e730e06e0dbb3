// Shared connectors under random faults on the whole path (VM driver → DPU → fabric → NIC →
// controllers): each round 16 random reads and writes, then at a random moment a random event
// (link down, link up, crash, restart) on a random controller, keeping one able to serve. Every
// request completes once with status 0 and the disk and every read match a shadow copy; the
// DPU sees no CM event (no disconnect, no reconnect).
import { describe, it, expect } from "vitest";
import { Card } from "../../host/card.js";
import { Fabric } from "../../host/fabric/fabric.js";
import type { Link, LinkOptions } from "../../host/fabric/link.js";
import { MemoryBackend } from "../../host/backends/memory.js";
import { VirtioBlkPci } from "../../host/pcie/virtio-pci.js";
import { VirtioBlkDriver } from "../../host/guest/virtio-blk.js";
import { NvmePci } from "../../host/pcie/nvme-pci.js";
import { NvmeDriver } from "../../host/guest/nvme.js";
import { BlkOp, type BlockDriver } from "../../host/guest/driver.js";
import { connectController, registerGuest, attachDisk } from "../../host/nvmeof/initiator.js";
import { StorageNic } from "../../host/target/nic.js";
import { DEFAULT_SUBNQN } from "../../host/target/subsystem.js";
import * as F from "../../assembly/nvmeof/defs.js";
import { ipWire, macHi, macLo, HOST, TARGET } from "../rdma/cm-pair.js";
import { pattern } from "./nvmf.js";

const RAM = 4 << 20;

interface World { host: Card; tcard: Card; nic: StorageNic; disk: Uint8Array; drv: BlockDriver; step: () => void; now: number; link: Link }

async function world(o: { front?: "virtio" | "nvme"; bs?: 512 | 4096; blocks?: number; protection?: boolean; mtu?: number; link?: LinkOptions; seed?: number; controllers?: number; ioQueues?: number } = {}): Promise<World> {
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

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;


const takeovers: number[] = [];

describe("failover under random events", () => {
  for (let sd = 0; sd < 12; sd++) it(`seed ${sd}: MTU ${[256, 1024, 4096][sd % 3]}, ${["no faults", "1% loss / 2% reorder", "3% loss / 3% reorder"][sd % 3]}${sd % 2 ? ", 1% duplication, NVMe front end" : ", virtio front end"}`, async () => {
    const link = { loss: [0, 0.01, 0.03][sd % 3]!, reorder: [0, 0.02, 0.03][sd % 3]!, duplicate: sd % 2 ? 0.01 : 0 };
    const w = await world({ front: sd % 2 ? "nvme" : "virtio", link, seed: 200 + sd, controllers: 2, mtu: [256, 1024, 4096][sd % 3] });
    const g = w.host.guests[0]!;
    const shadow = new Uint8Array(w.disk.length);
    const bufs = Array.from({ length: 16 }, () => g.alloc(32 * 512, 4096));
    let seed = 7 + sd * 13;
    const rnd = (n: number) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
    const cm0 = (w.host.counters() as Record<string, number>).cm_transitions;
    for (let round = 0; round < 12; round++) {
      const reqs = Array.from({ length: 16 }, (_, i) => ({ op: rnd(2) ? BlkOp.WRITE : BlkOp.READ, lba: i * 512 + rnd(480), n: 1 + rnd(32) }));
      for (const [i, r] of reqs.entries()) {
        if (r.op === BlkOp.WRITE) g.u8.set(pattern(r.n * 512, round * 100 + i + 1), bufs[i]!);
        else g.u8.fill(0xcc, bufs[i]!, bufs[i]! + r.n * 512);
        expect(w.drv.submit(r.op, r.lba, r.n, bufs[i]!, i)).toBe(true);
      }
      w.drv.kick();
      for (let s = rnd(40); s > 0; s--) w.step();
      const k = rnd(2), f = w.nic.failovers().controllers;
      const act = rnd(4);
      const other = f[1 - k]!;
      const otherOk = other.link === "up" && !other.crashed;
      if (act === 0 && otherOk) w.nic.linkDown(k);
      else if (act === 1) w.nic.linkUp(k);
      else if (act === 2 && otherOk) w.nic.crash(k);
      else w.nic.restart(k);
      const out = new Map<number, number>();
      for (let i = 0; i < 300_000 && out.size < 16; i++) { w.step(); w.drv.reap((t, s) => { expect(out.has(t)).toBe(false); out.set(t, s); }); }
      expect(out.size, `round ${round} ${JSON.stringify(w.nic.failovers())}`).toBe(16);
      for (const [i, r] of reqs.entries()) {
        expect(out.get(i), `round ${round} request ${i}`).toBe(0);
        const at = r.lba * 512, len = r.n * 512;
        if (r.op === BlkOp.WRITE) shadow.set(g.u8.subarray(bufs[i]!, bufs[i]! + len), at);
        else expect(same(g.u8.subarray(bufs[i]!, bufs[i]! + len), shadow.subarray(at, at + len)), `round ${round} read ${i}`).toBe(true);
      }
      expect(same(w.disk, shadow)).toBe(true);
    }
    takeovers.push(w.nic.failovers().commandsMoved);
    expect(w.nic.failovers().errorResponses).toBe(0);
    expect((w.host.counters() as Record<string, number>).cm_transitions).toBe(cm0);
  });
  it("the random events did move commands in flight", () => {
    expect(takeovers.filter((n) => n > 0).length).toBeGreaterThanOrEqual(6);
  });
});
