// The run loop: the documented virtual-time cost model, progress, and stall detection.
import { describe, expect, it } from "vitest";
import { parseScenario } from "../../host/scenario.js";
import { Testbed, runScenario, type DeviceModel } from "../../host/testbed.js";
import { runOk } from "../../host/cli/report.js";
import type { BlockDriver } from "../../host/guest/driver.js";

const one = (device: "virtio-blk" | "nvme", job: object, timing: object = {}) =>
  parseScenario({ timing, job: { bs: "4k", verify: true, ...job }, vms: [{ name: "vm", device, ram: "8M", disk: { backend: "memory", size: "1M" } }] });

describe("testbed", () => {
  it.each(["virtio-blk", "nvme"] as const)("%s: latency follows the cost model (poll + request + DMA bytes)", async (device) => {
    const timing = { poll_ns: 1000, request_ns: 100, pcie_gb_per_s: 4.096, host_io_ns: 0 };
    const r = await runScenario(one(device, { iodepth: 1, number_ios: 50 }, timing));
    expect(r.cost).toEqual({ pollNs: 1000, requestNs: 100, pcieBytesPerNs: 4.096, hostIoNs: 0 });
    const j = r.jobs[0]!;
    const perIo = 1000 + 100 + 4096 / 4.096; // one request of 4 KiB per poll
    for (const d of [j.read, j.write]) {
      if (d.lat.count === 0) continue;
      expect(d.lat.min).toBe(perIo);
      expect(d.lat.max).toBe(perIo);
    }
    expect(r.virtualNs).toBe(r.polls * perIo);
    expect(r.polls).toBe(50);
  });

  it("stamps the k-th completion of a poll k request-costs after the poll's fixed cost", async () => {
    const cost = { pollNs: 1000, requestNs: 100, pcieBytesPerNs: Infinity, hostIoNs: 0 };
    const r = await runScenario(one("nvme", { iodepth: 4, number_ios: 4, rw: "randread" }), { cost });
    const h = r.jobs[0]!.read.lat;
    expect([h.min, h.max, h.mean]).toEqual([1100, 1400, 1250]);
  });

  it("reports progress up to 1 and ends with every IO done", async () => {
    const seen: number[] = [];
    const tb = await Testbed.create(one("virtio-blk", { iodepth: 8, number_ios: 2000 }));
    const r = tb.run({ progressEvery: 10, onProgress: (p) => seen.push(p.fraction) });
    expect(seen.length).toBeGreaterThan(5);
    expect(seen.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= seen[i - 1]!))).toBe(true);
    expect(seen.at(-1)).toBe(1);
    expect(r.jobs[0]!.read.ios + r.jobs[0]!.write.ios).toBe(2000);
  });

  it("declares a stall when a device stops completing, and counts the lost IOs as errors", async () => {
    const blackHole: DeviceModel = {
      attach: (ctx): BlockDriver => ({
        name: "black hole", blockSize: 4096, capacityBlocks: ctx.vm.disk.size / 4096, maxInflight: 8,
        submit: () => true, kick: () => {}, reap: () => 0,
      }),
    };
    const r = await runScenario(one("nvme", { iodepth: 8, number_ios: 100 }), { devices: { nvme: blackHole }, stallRounds: 50 });
    expect(r.stalled).toBe(true);
    expect(r.jobs[0]!.errors).toBe(8);
    expect(runOk(r)).toBe(false);
  });
});
