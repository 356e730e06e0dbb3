// Example: a flaky storage backend. The disk behind one VM fails a write; the guest must
// see an IO error for exactly that write, the firmware must count it, and the other VM's
// workload must run on unharmed. Backend faults need host-served disks (hostBackends).
import { it, expect } from "vitest";
import { createTestbed, BlkOp } from "wasm-dpu";

it("a failed backend write reaches only the guest that issued it", async () => {
  const tb = await createTestbed("local", { hostBackends: true, workload: true, number_ios: 2000 });
  const faults: string[] = [];
  tb.on("fault", (e) => faults.push(`${e.vm} ${e.fault} ${JSON.stringify(e.detail)}`));

  // Fail the next two writes to the NVMe VM's disk, 50 µs into the run.
  tb.inject({ kind: "backend-error", vm: "vm1-nvme", op: "write", count: 2 }, { at: "50us" });
  const result = tb.runWorkload();

  const [virtio, nvme] = result.jobs;
  expect(virtio!.errors).toBe(0);
  expect(virtio!.verifyErrors).toBe(0);
  expect(nvme!.errors).toBe(2);
  expect(result.firmware.errors).toEqual({ err_backend_io: 2 });
  expect(faults).toHaveLength(2);
  expect(faults[0]).toMatch(/^vm1-nvme backend-error \{"op":"write","lba":\d+\}$/);

  // The disk works again afterwards.
  const vm = tb.vm("vm1-nvme");
  await tb.wait(vm.submit(BlkOp.WRITE, 0, 1, new Uint8Array(4096).fill(9)));
  expect((await vm.read(0))[0]).toBe(9);
});
