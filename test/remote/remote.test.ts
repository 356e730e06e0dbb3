// Disks behind the storage target (host/remote.ts): whole runs of VMs → DPU → NVMe-oF over
// RoCEv2 → fabric → storage-side NIC → controllers → backends, with every read verified.
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cli, type CliIo } from "../../host/cli/run.js";
import { parseScenario, PATH_MTUS } from "../../host/scenario.js";
import { runScenario } from "../../host/index.js";
import { createTestbed, IoError } from "../../host/api/testbed.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wasm-dpu-remote-"));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const io: CliIo = { out: (s) => out.push(s), err: (s) => err.push(s) };
  const code = await cli(args, io);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const remoteVm = (name: string, device: "nvme" | "virtio-blk", bs = 4096) =>
  ({ name, device, ram: "16M", disk: { backend: "memory", transport: "rdma", size: "16M", block_size: bs } });

describe("scenario rdma: two VMs over NVMe-oF/RoCEv2 under 1% loss, reordering and duplication", () => {
  it("verifies every IO, and the link really lost, reordered and duplicated frames", async () => {
    const r = await run(["run", "--scenario", "rdma", "--ios", "1500", "--quiet", "--json", "--no-wall"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.ok).toBe(true);
    for (const job of j.jobs) {
      expect([job.total_err, job.verify_errors]).toEqual([0, 0]);
      expect(job.read.total_ios + job.write.total_ios).toBe(1500);
    }
    for (const d of ["dpu->nic", "nic->dpu"]) {
      const s = j.target.link[d];
      expect(s.lost).toBeGreaterThan(0);
      expect(s.reordered).toBeGreaterThan(0);
      expect(s.duplicated).toBeGreaterThan(0);
    }
    // The transport recovered: go-back-N resends on both cards; duplicates were recognised and dropped.
    expect(j.firmware.counters.rdma_rc_resends).toBeGreaterThan(0);
    expect(j.target.nic.counters.rdma_rc_resends).toBeGreaterThan(0);
    expect(j.target.nic.counters.nic_fast_path_sends).toBeGreaterThan(0);
    // Both controllers served I/O queues.
    expect(j.target.controllers.map((c: { commands: Record<string, number> }) => (c.commands.read ?? 0) + (c.commands.write ?? 0)).every((n: number) => n > 0)).toBe(true);
  });

  it("is deterministic: the same seed gives byte-identical JSON and an identical capture", async () => {
    const files = [path.join(tmp, "a.pcap"), path.join(tmp, "b.pcap")];
    const outs = [];
    for (const f of files) outs.push(await run(["run", "--scenario", "rdma", "--ios", "300", "--quiet", "--json", "--no-wall", "--pcap", f, "--seed", "5"]));
    expect(outs[0]!.code).toBe(0);
    expect(outs[1]!.out).toBe(outs[0]!.out);
    expect(fs.readFileSync(files[1]!).equals(fs.readFileSync(files[0]!))).toBe(true);
    expect(fs.statSync(files[0]!).size).toBeGreaterThan(300 * 4096);
  });

  it("refuses --pcap for a scenario without remote disks, naming the problem", async () => {
    const r = await run(["run", "--scenario", "local", "--pcap", path.join(tmp, "x.pcap")]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--pcap: scenario "local" sends no frames/);
  });
});

describe("remote disks: segmentation at every path MTU", () => {
  it.each(PATH_MTUS)("MTU %i: 16 KiB and 4 KiB reads and writes verify", async (mtu) => {
    const sc = parseScenario({
      name: `mtu-${mtu}`, fabric: { mtu, loss: 0.005 }, target: { controllers: 2 },
      job: { rw: "randrw", bs: "16k", iodepth: 8, verify: true, number_ios: 200 },
      vms: [remoteVm("a", "nvme"), { ...remoteVm("b", "virtio-blk", 512), job: { bs: "4k" } }],
    });
    const r = await runScenario(sc);
    expect(r.stalled).toBe(false);
    expect(r.jobs.map((j) => [j.errors, j.verifyErrors])).toEqual([[0, 0], [0, 0]]);
  });
});

describe("remote disks: end-to-end protection checked by the NIC", () => {
  it("a block corrupted on the target fails its read with an error; other blocks still read; nothing corrupt is returned as good", async () => {
    const tb = await createTestbed({
      name: "dif", target: { controllers: 2, protection: true }, vms: [remoteVm("vm", "nvme")],
    });
    const vm = tb.vm("vm");
    const data = new Uint8Array(4 * 4096).map((_, i) => (i * 7 + 3) & 0xff);
    await vm.write(100, data);
    expect(await vm.read(100, 4)).toEqual(data);
    tb.testbed.remote!.corrupt(0, 102);
    await expect(vm.read(100, 4)).rejects.toBeInstanceOf(IoError);
    await expect(vm.read(102, 1)).rejects.toThrow(/read at LBA 102 failed/);
    expect(await vm.read(100, 2)).toEqual(data.subarray(0, 8192));
    expect(tb.testbed.remote!.report().nic.errors.err_nic_dif_guard).toBe(2);
    tb.close();
  });
});
