// Example: a lost doorbell (the PCIe-side cousin of a dropped packet). An NVMe SQ tail
// doorbell never reaches the card: the command sits in the SQ until the next doorbell of
// that queue carries the new tail, then both complete. A test asserts the recovery and
// how long the first command waited, on the virtual clock (deterministic on any machine).
import { it, expect } from "vitest";
import { createTestbed, BlkOp, type DoorbellEvent } from "wasm-dpu";

it("a dropped SQ doorbell delays the command until the next doorbell; nothing is lost", async () => {
  const tb = await createTestbed("local");
  const vm = tb.vm("vm1-nvme");
  const doorbells: DoorbellEvent[] = [];
  tb.on("doorbell", (e) => { if (e.vm === vm.name) doorbells.push(e); });

  tb.inject({ kind: "drop-doorbell", vm: vm.name, queue: 1 }); // I/O queue 1; queue 0 is the admin queue
  const fetched = tb.counter("nvme_sqes_fetched"); // any firmware counter, by name
  const first = vm.submit(BlkOp.WRITE, 8, 1, new Uint8Array(4096).fill(1));
  tb.runFor("100us");
  expect(first.result).toBeUndefined(); // stuck: the card never heard of it
  expect(tb.counter("nvme_sqes_fetched")).toBe(fetched);

  const second = vm.submit(BlkOp.WRITE, 9, 1, new Uint8Array(4096).fill(2));
  const [a, b] = await tb.wait([first, second]);
  expect([a.status, b.status]).toEqual([0, 0]);
  expect(a.completed - a.submitted).toBeGreaterThanOrEqual(100_000);
  expect(doorbells.map((d) => d.dropped ?? false)).toEqual([true, false, false]); // dropped, 2nd SQ tail, CQ head
  expect([...(await vm.read(8, 2)).filter((_, i) => i % 4096 === 0)]).toEqual([1, 2]);
});
