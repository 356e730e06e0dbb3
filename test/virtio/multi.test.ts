// Two VMs on one card, each with its own virtio-blk function and disk: their IO stays
// apart, and one VM breaking its ring stops only its own device.
import { describe, it, expect } from "vitest";
import { Card } from "../../host/card.js";
import { VirtioBlkPci } from "../../host/pcie/virtio-pci.js";
import { VirtioBlkDriver } from "../../host/guest/virtio-blk.js";
import { BlkOp } from "../../host/guest/driver.js";
import type { MemoryBackend } from "../../host/backends/memory.js";
import * as V from "../../assembly/virtio/layout.js";

describe("two VMs", () => {
  it("keep their data apart, and a broken ring in one leaves the other running", async () => {
    const card = await Card.create({
      guests: [{ ramBytes: 1 << 20 }, { ramBytes: 1 << 20 }],
      disks: [{ kind: "memory", bytes: 1 << 20, blockSize: 512 }, { kind: "memory", bytes: 1 << 20, blockSize: 4096 }],
    });
    const vms = [0, 1].map((i) => {
      const dev = new VirtioBlkPci(card, { guest: i, disk: i });
      const drv = new VirtioBlkDriver(dev, card.guests[i]!, { packed: i === 1 });
      const buf = card.guests[i]!.alloc(4096);
      card.guests[i]!.u8.fill(0x10 + i, buf, buf + 4096);
      return { dev, drv, buf, g: card.guests[i]! };
    });
    for (const vm of vms) { vm.drv.submit(BlkOp.WRITE, 0, 4096 / vm.drv.blockSize, vm.buf, 1); vm.drv.kick(); }
    card.poll();
    for (const vm of vms) expect(vm.drv.reap(() => {})).toBe(1);
    const disk = (i: number) => (card.disks[i] as MemoryBackend).bytes;
    expect(disk(0).subarray(0, 4096).every((b) => b === 0x10)).toBe(true);
    expect(disk(1).subarray(0, 4096).every((b) => b === 0x11)).toBe(true);
    // VM 0 publishes an impossible avail idx
    const r0 = vms[0]!.drv.ring(0);
    vms[0]!.g.dv.setUint16(r0.driver + V.AVAIL_IDX, 1 + r0.size + 1, true);
    card.doorbell(vms[0]!.dev.func, 0);
    vms[1]!.drv.submit(BlkOp.READ, 0, 1, vms[1]!.buf, 2);
    vms[1]!.drv.kick();
    card.poll();
    expect(card.fw.virtioQueueState(vms[0]!.dev.func, 0)).toBe(V.QS_BROKEN);
    expect(card.fw.virtioQueueState(vms[1]!.dev.func, 0)).toBe(V.QS_READY);
    const got: number[] = [];
    vms[1]!.drv.reap((t, s) => got.push(t, s));
    expect(got).toEqual([2, 0]);
    expect(card.errors()).toEqual({ err_virtio_bad_avail_idx: 1 });
  });
});
