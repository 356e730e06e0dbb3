// Controller failover end to end: scenario events cut a storage controller's link in the middle
// of a verified mixed load. With shared connectors the VMs see nothing (no error, no reconnect,
// no QP error on the DPU); with the reconnecting baseline the DPU reconnects and resubmits; with
// every controller gone the VMs get errors, not a hang.
import { describe, expect, it } from "vitest";
import { cli, type CliIo } from "../../host/cli/run.js";
import { loadScenario, parseScenario, type Scenario } from "../../host/scenario.js";
import { runScenario } from "../../host/index.js";

async function run(args: string[]) {
  const out: string[] = [], err: string[] = [];
  const io: CliIo = { out: (s) => out.push(s), err: (s) => err.push(s) };
  const code = await cli(args, io);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

async function failover(mode: "connectors" | "reconnect", ios = 12_000, events?: Scenario["events"]): Promise<Scenario> {
  const s = await loadScenario("failover", { number_ios: ios });
  return { ...s, target: { ...s.target!, mode }, events: events ?? s.events };
}

describe("scenario failover: controller A's link cut under a verified mixed load", () => {
  it("wasm-dpu run --scenario failover: no error, no verify error; A's queues moved to B and back; the host never reconnected", async () => {
    const r = await run(["run", "--scenario", "failover", "--json", "--no-wall", "--quiet"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    for (const job of j.jobs) expect([job.total_err, job.verify_errors, job.read.total_ios + job.write.total_ios]).toEqual([0, 0, 20_000]);
    expect(j.target.events.map((e: { event: string; controller: string }) => `${e.event} ${e.controller}`)).toEqual(["link-down A", "link-up A"]);
    expect(j.target.failover.takeovers).toBeGreaterThanOrEqual(1);
    expect(j.target.failover.failbacks).toBeGreaterThanOrEqual(1);
    expect(j.target.reconnect.reconnects).toBe(0);
    // The host's QPs never noticed: no retry exhaustion, no CM disconnect, no flushed work request.
    const dpu = j.firmware.counters;
    expect([dpu.err_rdma_retry_exceeded ?? 0, dpu.cm_rejects_received ?? 0, dpu.nvmf_queue_lost ?? 0, dpu.err_nvmf_send_failed ?? 0]).toEqual([0, 0, 0, 0]);
  });

  it("the same cut with the reconnecting baseline: the DPU reconnects and resubmits, every IO verified", async () => {
    const r = await runScenario(await failover("reconnect"));
    expect(r.stalled).toBe(false);
    expect(r.jobs.map((j) => [j.errors, j.verifyErrors])).toEqual([[0, 0], [0, 0]]);
    expect(r.target!.reconnect!.reconnects).toBeGreaterThanOrEqual(1);
    expect(r.firmware.counters.nvmf_resubmitted).toBeGreaterThan(0);
  });

  it("a crashed controller that restarts: connectors carry on, verified", async () => {
    const r = await runScenario(await failover("connectors", 12_000, [
      { at: 2e6, event: "controller-crash", controller: "B" }, { at: 4e6, event: "controller-restart", controller: "B" },
    ]));
    expect(r.jobs.map((j) => [j.errors, j.verifyErrors])).toEqual([[0, 0], [0, 0]]);
    expect(r.target!.failover.takeovers).toBeGreaterThanOrEqual(1);
  });

  it("both controllers lost: the VMs get IO errors and the run ends — no hang", async () => {
    const s = parseScenario({
      name: "all-lost", target: { controllers: 2 }, job: { rw: "randrw", bs: "4k", iodepth: 8, verify: true, number_ios: 3000 },
      events: [{ at: "1ms", event: "link-down", controller: "A" }, { at: "1ms", event: "link-down", controller: "B" }],
      vms: [{ name: "vm", device: "nvme", ram: "16M", disk: { backend: "memory", transport: "rdma", size: "16M" } }],
    });
    const r = await runScenario(s, { stallRounds: 200_000 });
    expect(r.stalled).toBe(false);
    expect(r.jobs[0]!.errors).toBeGreaterThan(0);
    expect(r.jobs[0]!.verifyErrors).toBe(0);
  });
});
