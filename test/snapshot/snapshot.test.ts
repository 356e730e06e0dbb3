// Snapshot and restore of a whole testbed: card memory, host state (drivers, device
// models, jobs and their PRNGs), the clock. Restore and run again gives a byte-identical
// result; a snapshot saved to a file is resumed by `wasm-dpu run --restore FILE`.
import { describe, it, expect } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestbed, restoreTestbed, saveSnapshot, restoreTestbedFile, TestbedError, type RunResult } from "../../host/index.js";
import { cli } from "../../host/cli/run.js";
import { BlkOp } from "../../host/guest/driver.js";
import { SMALL } from "../api/small.js";

const strip = (r: RunResult) => JSON.stringify({ ...r, wallNs: 0 });
const dir = mkdtempSync(join(tmpdir(), "wasm-dpu-snap-"));

describe("snapshot and restore", () => {
  it("restore and run again: byte-identical results, memory and trace, in the same testbed and a new one", async () => {
    const tb = await createTestbed(SMALL, { workload: true });
    tb.runFor("200us");
    const snap = tb.snapshot();
    tb.trace.start();
    const first = tb.runWorkload();
    const mem1 = tb.card.u8.slice(0, tb.card.layout.bytes);
    const trace1 = tb.trace.toJsonLines();
    expect(first.jobs.every((j) => j.errors === 0 && j.verifyErrors === 0)).toBe(true);

    tb.restore(snap);
    expect(tb.now).toBe(snap.now);
    tb.trace.start();
    const again = tb.runWorkload();
    expect(strip(again)).toBe(strip(first));
    expect(Buffer.compare(tb.card.u8.slice(0, tb.card.layout.bytes), mem1)).toBe(0);
    expect(tb.trace.toJsonLines()).toBe(trace1);

    const other = await restoreTestbed(snap);
    expect(strip(other.runWorkload())).toBe(strip(first));
  });

  it("a restore rewinds IO done through the API too", async () => {
    const tb = await createTestbed(SMALL);
    const vm = tb.vm("nvme");
    await vm.write(1, new Uint8Array(4096).fill(1));
    const snap = tb.snapshot();
    await vm.write(1, new Uint8Array(4096).fill(2));
    expect((await vm.read(1))[0]).toBe(2);
    tb.restore(snap);
    expect((await vm.read(1))[0]).toBe(1);
    expect(tb.counter("nvme_io_commands")).toBe(2);
  });

  it("host-served memory disks are part of the snapshot", async () => {
    const tb = await createTestbed(SMALL, { hostBackends: true });
    await tb.vm("blk").write(0, new Uint8Array(512).fill(4));
    const snap = tb.snapshot();
    await tb.vm("blk").write(0, new Uint8Array(512).fill(5));
    // A fault armed after the snapshot stays armed across the restore (faults are the test's).
    const f = tb.inject({ kind: "backend-error", vm: "blk", op: "read" });
    tb.restore(snap);
    await expect(tb.vm("blk").read(0)).rejects.toThrow(/blk: read at LBA 0 failed/);
    expect(f.fired).toBe(1);
    expect((await tb.vm("blk").read(0))[0]).toBe(4);
  });

  it("refuses with IO in flight, into another scenario, and a file that is not a snapshot", async () => {
    const tb = await createTestbed(SMALL);
    const h = tb.vm("blk").submit(BlkOp.READ, 0, 1);
    expect(() => tb.snapshot()).toThrow(/1 IOs issued through the API are in flight/);
    await tb.wait(h);
    const snap = tb.snapshot();
    const other = await createTestbed(SMALL, { seed: 9 });
    expect(() => other.restore(snap)).toThrow(/scenario "small" with different settings/);
    const hb = await createTestbed(SMALL, { hostBackends: true });
    expect(() => hb.restore(snap)).toThrow(/taken with hostBackends=false, this testbed has hostBackends=true/);
    const junk = join(dir, "junk.snap");
    writeFileSync(junk, "hello");
    await expect(restoreTestbedFile(junk)).rejects.toThrow(new TestbedError(`snapshot: ${junk} is not a wasm-dpu snapshot file`));
    await expect(restoreTestbedFile(join(dir, "none.snap"))).rejects.toThrow(/cannot read/);
  });

  it("saves to a file that restores to the same run", async () => {
    const tb = await createTestbed(SMALL, { workload: true });
    tb.runFor("100us");
    const file = join(dir, "mid.snap");
    saveSnapshot(tb, file);
    const first = tb.runWorkload();
    const back = await restoreTestbedFile(file);
    expect(back.now).toBeGreaterThanOrEqual(100_000);
    expect(strip(back.runWorkload())).toBe(strip(first));
  });
});

describe("wasm-dpu run --snapshot-at/--snapshot and --restore", () => {
  it("resumes a snapshot a test saved without workload: the scenario's jobs run from its state", async () => {
    const tb = await createTestbed(SMALL);
    await tb.vm("nvme").write(0, new Uint8Array(4096).fill(1));
    const file = join(dir, "from-test.snap");
    saveSnapshot(tb, file);
    const r = await run("--restore", file, "--json", "--no-wall");
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.jobs.map((j: { jobname: string }) => j.jobname)).toEqual(["blk", "nvme"]);
    expect(json.firmware.counters.nvme_io_commands).toBeGreaterThan(800);
  });


  const run = async (...argv: string[]) => {
    const out: string[] = [], err: string[] = [];
    const code = await cli(["run", ...argv], { out: (s) => out.push(s), err: (s) => err.push(s) });
    return { code, out: out.join("\n"), err: err.join("\n") };
  };

  it("saving mid-run and resuming give the same JSON as an uninterrupted run", async () => {
    const file = join(dir, "cli.snap");
    const scen = join(dir, "small.json");
    writeFileSync(scen, JSON.stringify(SMALL));
    const plain = await run("--scenario", scen, "--json", "--no-wall");
    const saved = await run("--scenario", scen, "--json", "--no-wall", "--snapshot-at", "150us", "--snapshot", file);
    const resumed = await run("--restore", file, "--json", "--no-wall");
    expect([plain.code, saved.code, resumed.code]).toEqual([0, 0, 0]);
    expect(saved.out).toBe(plain.out);
    expect(resumed.out).toBe(plain.out);
  });

  it("usage errors name the option", async () => {
    expect(await run("--snapshot", "x.snap")).toMatchObject({ code: 2, err: expect.stringMatching(/--snapshot-at and --snapshot go together/) });
    expect(await run("--snapshot-at", "soon", "--snapshot", "x")).toMatchObject({ code: 2, err: expect.stringMatching(/--snapshot-at: /) });
    expect(await run("--restore", "x.snap", "--seed", "3")).toMatchObject({ code: 2, err: expect.stringMatching(/--seed cannot change it/) });
    expect(await run("--restore", join(dir, "missing.snap"))).toMatchObject({ code: 2, err: expect.stringMatching(/snapshot: cannot read/) });
  });
});
