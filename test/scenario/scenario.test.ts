// Scenario files: defaults, units, overrides, and one clear message per problem.
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseScenario, loadScenario, ScenarioError, DEFAULT_NUMBER_IOS } from "../../host/scenario.js";

const vm = (o: Record<string, unknown> = {}) => ({ name: "a", device: "virtio-blk", disk: { backend: "memory", size: "16M" }, ...o });
const problem = (input: unknown) => {
  try {
    parseScenario(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as Error).message;
  }
  throw new Error("scenario was accepted");
};

const remote = (o: Record<string, unknown> = {}) => vm({ disk: { backend: "memory", transport: "rdma", size: "16M" }, ...o });

describe("scenario: disks behind the storage target (transport rdma)", () => {
  it("fills the fabric and target defaults, and keeps remote disks out of the DPU's memory", () => {
    const s = parseScenario({ target: {}, vms: [remote({ disk: { backend: "memory", transport: "rdma", size: "64G" } })] });
    expect(s.target).toEqual({ controllers: 2, fast_path: true, protection: false, mode: "connectors", heartbeat: 100_000 });
    expect(s.events).toEqual([]);
    expect(s.fabric).toEqual({ gbps: 100, latency: 1000, loss: 0, reorder: 0, duplicate: 0, mtu: 4096 });
    expect(s.vms[0]!.disk).toMatchObject({ transport: "rdma", size: 64 * 2 ** 30 });
    expect(parseScenario({ vms: [vm()] }).vms[0]!.disk.transport).toBe("local");
  });

  it("orders events by time, ties in file order", () => {
    const s = parseScenario({ target: {}, vms: [remote()], events: [
      { at: "5ms", event: "link-up", controller: "A" }, { at: "2ms", event: "link-down", controller: "A" }, { at: "5ms", event: "controller-crash", controller: "B" },
    ] });
    expect(s.events).toEqual([
      { at: 2e6, event: "link-down", controller: "A" }, { at: 5e6, event: "link-up", controller: "A" }, { at: 5e6, event: "controller-crash", controller: "B" },
    ]);
  });

  it.each([
    [{ vms: [remote()] }, 'scenario.target: required when a disk has transport "rdma"'],
    [{ target: {}, vms: [vm()] }, 'scenario.target: no disk has transport "rdma"'],
    [{ fabric: {}, vms: [vm()] }, 'scenario.fabric: no disk has transport "rdma"'],
    [{ target: {}, fabric: { mtu: 1500 }, vms: [remote()] }, "scenario.fabric.mtu: must be one of 256, 512, 1024, 2048, 4096"],
    [{ target: {}, fabric: { loss: 1.5 }, vms: [remote()] }, "scenario.fabric.loss: must be at most 1"],
    [{ target: {}, fabric: { latency: "soon" }, vms: [remote()] }, 'scenario.fabric.latency: "soon" is not a duration'],
    [{ target: { controllers: 9 }, vms: [remote()] }, "scenario.target.controllers: must be at most 8"],
    [{ target: { fast_path: "yes" }, vms: [remote()] }, "scenario.target.fast_path: must be a boolean, not a string"],
    [{ target: {}, vms: [remote({ disk: { backend: "memory", transport: "tcp", size: "16M" } })] }, 'scenario.vms[0].disk.transport: must be one of "local", "rdma"'],
    [{ target: {}, vms: Array.from({ length: 9 }, (_, i) => remote({ name: `v${i}`, ram: "8M" })) }, 'scenario.vms: 9 disks with transport "rdma", at most 8'],
    [{ target: { mode: "retry" }, vms: [remote()] }, 'scenario.target.mode: must be one of "connectors", "reconnect"'],
    [{ target: { heartbeat: 0 }, vms: [remote()] }, "scenario.target.heartbeat: must be longer than 0"],
    [{ events: [{ at: "1ms", event: "link-down", controller: "A" }], vms: [vm()] }, 'scenario.events[0]: events happen to the storage target, and no disk has transport "rdma"'],
    [{ target: {}, events: [{ at: "1ms", event: "link-down", controller: "C" }], vms: [remote()] }, 'scenario.events[0].controller: "C" is not one of the target\'s 2 controllers (A to B)'],
    [{ target: {}, events: [{ at: "1ms", event: "link-down", controller: "a" }], vms: [remote()] }, "scenario.events[0].controller: must be a controller letter, A to H"],
    [{ target: {}, events: [{ at: "1ms", event: "unplug", controller: "A" }], vms: [remote()] }, 'scenario.events[0].event: must be one of "link-down", "link-up", "controller-crash", "controller-restart"'],
    [{ target: {}, events: [{ at: "-1ms", event: "link-up", controller: "A" }], vms: [remote()] }, "scenario.events[0].at:"],
  ])("rejects %j with the field and the problem", (input, msg) => {
    expect(problem(input)).toContain(msg);
  });
});

describe("scenario", () => {
  it("fills defaults and parses sizes and durations", () => {
    const s = parseScenario({ vms: [vm({ job: { bs: "8k", runtime: "5ms" } }), vm({ name: "b", device: "nvme", ram: "1G", disk: { backend: "memory", size: "64M", block_size: 512 } })] });
    expect(s.poll_budget).toBe(256);
    expect(s.vms[0]).toMatchObject({ ram: 64 << 20, queues: 1, queue_size: 128, packed: false, disk: { size: 16 << 20, block_size: 4096 } });
    expect(s.vms[0]!.job).toMatchObject({ rw: "randrw", rwmixread: 50, bs: 8192, iodepth: 32, runtime: 5e6, verify: false });
    expect(s.vms[0]!.job.number_ios).toBeUndefined();
    expect(s.vms[1]!.job.number_ios).toBe(DEFAULT_NUMBER_IOS);
    expect(s.vms[1]!.ram).toBe(2 ** 30);
    expect(s.vms[0]!.job.seed).not.toBe(s.vms[1]!.job.seed); // each VM its own stream
  });

  it("merges the scenario's job defaults under each VM's job, and CLI overrides over both", () => {
    const input = { seed: 5, job: { iodepth: 4, number_ios: 10, verify: true }, vms: [vm({ job: { iodepth: 8 } })] };
    expect(parseScenario(input).vms[0]!.job).toMatchObject({ iodepth: 8, number_ios: 10, verify: true });
    const o = parseScenario(input, { seed: 9, runtime: 1e6 });
    expect(o.seed).toBe(9);
    expect(o.vms[0]!.job).toMatchObject({ runtime: 1e6, number_ios: undefined });
    expect(o.vms[0]!.job.seed).not.toBe(parseScenario(input).vms[0]!.job.seed);
  });

  it.each([
    [{ vms: [vm(), vm({ name: "b", disk: { backend: "memory", size: "16M", block_size: 1000 } })] }, "scenario.vms[1].disk.block_size: must be 512 or 4096"],
    [{ vms: [vm({ device: "scsi" })] }, 'scenario.vms[0].device: must be one of "virtio-blk", "nvme"'],
    [{ vms: [vm({ colour: "red" })] }, 'scenario.vms[0]: unknown field "colour"'],
    [{ vms: [vm({ ram: "lots" })] }, 'scenario.vms[0].ram: "lots" is not a size'],
    [{ vms: [vm({ queues: 1.5 })] }, "scenario.vms[0].queues: must be a whole number"],
    [{ vms: [vm({ queue_size: "128" })] }, "scenario.vms[0].queue_size: must be a number, not a string"],
    [{ vms: [{ device: "nvme", disk: { backend: "memory", size: "1M" } }] }, "scenario.vms[0].name: required"],
    [{ vms: [] }, "scenario.vms: needs at least 1 entry"],
    [{ vms: [vm({ job: { runtime: "soon" } })] }, 'scenario.vms[0].job.runtime: "soon" is not a duration'],
    [{ vms: [vm({ job: { rw: "trim" } })] }, "scenario.vms[0].job.rw: must be one of"],
    [{ timing: { pcie_gb_per_s: 0 }, vms: [vm()] }, "scenario.timing.pcie_gb_per_s: must be more than 0"],
  ])("rejects a bad field with its path: %j", (input, msg) => {
    expect(problem(input)).toContain(msg);
  });

  it.each([
    [vm({ queue_size: 100 }), "scenario.vms[0].queue_size: 100 is not a power of two"],
    [vm({ queue_size: 16, job: { iodepth: 32 } }), "scenario.vms[0].job.iodepth: 32 is more than the 1 queue(s) of 16 entries can hold (16)"],
    [vm({ device: "nvme", queue_size: 32, job: { iodepth: 32 } }), "can hold (31)"],
    [vm({ ram: "256k", job: { iodepth: 32, bs: "64k" } }), "scenario.vms[0].ram: 262144 bytes is too small"],
    [vm({ device: "nvme", packed: true }), "scenario.vms[0].packed: only for virtio-blk"],
    [vm({ device: "nvme", queue_size: 1024 }), "scenario.vms[0].queue_size: must be at most 512, what this NVMe controller's CAP.MQES allows"],
    [vm({ disk: { backend: "file", size: "1M" } }), "scenario.vms[0].disk.path: required for the file backend"],
    [vm({ disk: { backend: "memory", size: 5000, block_size: 512 } }), "scenario.vms[0].disk.size: 5000 bytes is not a multiple"],
    [vm({ disk: { backend: "memory", size: "1M", block_size: 4096 }, job: { bs: 512 } }), "scenario.vms[0].job.bs: 512 is not a multiple of the disk's 4096-byte block size"],
  ])("rejects combinations that cannot work: %j", (v, msg) => {
    expect(problem({ vms: [v] })).toContain(msg);
  });

  it("rejects VMs and memory disks that do not fit one card's 4 GiB memory", () => {
    const big = (name: string) => vm({ name, ram: "1G", disk: { backend: "memory", size: "1G" } });
    expect(problem({ vms: [big("a"), big("b")] })).toMatch(/^scenario\.vms: RAM disks and guest RAM need \d+ bytes, more than the 4 GiB/);
  });

  it("accepts a packed virtqueue of any size", () => {
    expect(parseScenario({ vms: [vm({ packed: true, queue_size: 100 })] }).vms[0]!.queue_size).toBe(100);
  });

  it("loads the built-in local scenario: a virtio-blk and an NVMe VM, 4k randrw, iodepth 32, verify", async () => {
    const s = await loadScenario();
    expect(s.name).toBe("local");
    expect(s.vms.map((v) => v.device)).toEqual(["virtio-blk", "nvme"]);
    for (const v of s.vms) expect(v.job).toMatchObject({ rw: "randrw", bs: 4096, iodepth: 32, verify: true });
  });

  it("names the file when it is missing or not JSON", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wasm-dpu-sc-"));
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, "{ vms: ");
    await expect(loadScenario(bad)).rejects.toThrow(`scenario ${bad}: not valid JSON`);
    await expect(loadScenario(path.join(dir, "none.json"))).rejects.toThrow(/none\.json: no such file, and not a built-in scenario \(local, rdma, failover\)/);
    fs.rmSync(dir, { recursive: true });
  });
});
