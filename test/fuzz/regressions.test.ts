// Bugs the fuzzer found, each pinned by a direct test (and its minimized input under
// test/fuzz/corpus/, replayed by corpus.test.ts).
import { describe, it, expect } from "vitest";
import { Card } from "../../host/card.js";
import { NvmePci } from "../../host/pcie/nvme-pci.js";
import { NvmeDriver, Opc } from "../../host/guest/nvme.js";
import { MemoryBackend } from "../../host/backends/memory.js";
import * as R from "../../assembly/nvme/regs.js";

describe("fuzz findings", () => {
  it("nvme: a Dataset Management deallocate in flight on a host disk when the controller resets leaks no request slot", async () => {
    // found by `npm run fuzz -- nvme --seed 1`: the stale child range was freed, its leader never
    const card = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [{ kind: "host", backend: new MemoryBackend(new Uint8Array(1 << 20), 512) }] });
    const dev = new NvmePci(card, { guest: 0, disk: 0, ioQueues: 1 });
    const drv = NvmeDriver.open(dev, { ioQueues: 1, queueSize: 16 });
    const ranges = drv.guest.alloc(4096);
    for (let i = 0; i < 3; i++) { // three ranges {context, nlb, slba}
      drv.guest.dv.setUint32(ranges + i * 16 + 4, 8, true);
      drv.guest.dv.setBigUint64(ranges + i * 16 + 8, BigInt(i * 64), true);
    }
    expect(drv.submitRaw(1, { opc: Opc.DSM, nsid: 1, prp1: ranges, cdw10: 2, cdw11: 4 /* AD */ }, 7)).toBeGreaterThanOrEqual(0);
    drv.kick();
    card.fw.poll(256, 0); // the ranges go to the host-IO ring; the host has not served them yet
    expect(card.inFlight()).toBe(4); // leader + three ranges
    dev.write(R.NVME_REG_CC, dev.read(R.NVME_REG_CC) & ~R.NVME_CC_EN); // controller reset
    for (let i = 0; i < 3; i++) card.poll();
    expect(card.counters().err_nvme_stale_completion).toBe(3);
    expect(card.inFlight()).toBe(0);
  });
});
