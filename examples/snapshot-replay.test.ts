// Example: debug a run by snapshot. Save the whole testbed (card memory, drivers, jobs,
// PRNGs, clock) in the middle of a run, then replay from there as often as needed: every
// replay is byte-identical. A failing test can write the snapshot to a file and
// `wasm-dpu run --restore FILE` resumes it outside the test runner.
import { it, expect } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestbed, restoreTestbed, saveSnapshot, restoreTestbedFile } from "wasm-dpu";

// A small scenario inline (a built-in name or a JSON file path work too).
const scenario = {
  name: "replay",
  job: { rw: "randrw", bs: "4k", iodepth: 16, verify: true, number_ios: 1500 },
  vms: [
    { name: "web", ram: "8M", device: "virtio-blk", packed: true, disk: { backend: "memory", size: "4M", block_size: 512 } },
    { name: "db", ram: "8M", device: "nvme", queues: 2, disk: { backend: "memory", size: "4M" } },
  ],
};

it("replays the second half of a run from a snapshot, byte for byte", async () => {
  const tb = await createTestbed(scenario, { workload: true, seed: 42 });
  tb.runFor("200us");
  const mid = tb.snapshot();
  const file = join(mkdtempSync(join(tmpdir(), "wasm-dpu-")), "mid.snap");
  saveSnapshot(tb, file); // e.g. in an afterEach when the test failed

  tb.trace.start({ kinds: ["completion"] });
  const first = tb.runWorkload();
  const firstTrace = tb.trace.toJsonLines();

  const replay = await restoreTestbed(mid);
  replay.trace.start({ kinds: ["completion"] });
  const again = replay.runWorkload();
  expect(again.jobs).toEqual(first.jobs.map((j) => ({ ...j })));
  expect(replay.trace.toJsonLines()).toBe(firstTrace);

  const fromFile = await restoreTestbedFile(file);
  expect(fromFile.now).toBe(mid.now);
  expect(fromFile.runWorkload().jobs).toEqual(first.jobs);
});
