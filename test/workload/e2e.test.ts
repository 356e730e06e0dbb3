// The job through the real firmware and guest drivers: verify catches corruption done
// behind the firmware's back, and a run is reproducible from its seed.
import { describe, expect, it } from "vitest";
import { parseScenario, type DeviceKind } from "../../host/scenario.js";
import { Testbed, runScenario } from "../../host/testbed.js";
import { MemoryBackend } from "../../host/backends/memory.js";

const DEVICES: DeviceKind[] = ["virtio-blk", "nvme"];
const scenario = (device: DeviceKind, job: object = {}) =>
  parseScenario({
    job: { rw: "randrw", bs: "4k", iodepth: 16, number_ios: 4000, verify: true, ...job },
    vms: [{ name: "vm", device, ram: "8M", disk: { backend: "memory", size: "1M", block_size: 4096 } }],
  });

describe.each(DEVICES)("job on %s", (device) => {
  it("verifies every read of a correct device", async () => {
    const r = await runScenario(scenario(device));
    const j = r.jobs[0]!;
    expect(j.read.ios + j.write.ios).toBe(4000);
    expect(j.errors).toBe(0);
    expect(j.verifyErrors).toBe(0);
    expect(r.firmware.errors).toEqual({});
    expect(j.read.lat.min).toBeGreaterThan(0); // latency is on the virtual clock: never zero
  });

  it("reports a verify error when a block is corrupted behind the firmware's back", async () => {
    const tb = await Testbed.create(scenario(device));
    const disk = tb.card.disks[0] as MemoryBackend;
    let corrupted = false;
    const r = tb.run({
      progressEvery: 20,
      onProgress: () => {
        if (corrupted) return;
        for (let b = 0; b < disk.blocks; b++) disk.bytes[b * 4096 + 2000]! ^= 0xff; // one byte per block, on the card
        corrupted = true;
      },
    });
    expect(corrupted).toBe(true);
    expect(r.jobs[0]!.errors).toBe(0);
    expect(r.jobs[0]!.verifyErrors).toBeGreaterThan(0);
    expect(r.jobs[0]!.verifyDetail).toMatch(/byte 2000 of the 4096-byte block/);
  });

  it("gives identical results for a seed and different ones for another", async () => {
    const digest = async (seed: number) => {
      const s = scenario(device, { number_ios: 1500 });
      s.vms[0]!.job.seed = seed;
      const r = await runScenario(s);
      const j = r.jobs[0]!;
      return JSON.stringify([j.read.ios, j.write.ios, j.read.lat.percentile(50), j.write.lat.percentile(99), j.endNs, r.polls, r.firmware.counters]);
    };
    expect(await digest(5)).toBe(await digest(5));
    expect(await digest(5)).not.toBe(await digest(6));
  });
});
