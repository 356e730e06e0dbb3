// Example: a storage controller crashes in the middle of a VM's IO. The storage-side NIC's
// shared connectors hand its queue pairs and its unfinished commands to the other controller:
// the VM sees no error and reads back what it wrote; the DPU never had to reconnect.
import { it, expect } from "vitest";
import { createTestbed } from "wasm-dpu";

const scenario = {
  name: "crash",
  target: { controllers: 2, mode: "connectors" }, // "reconnect": the baseline without shared connectors
  vms: [{ name: "db", device: "nvme", ram: "16M", disk: { backend: "memory", transport: "rdma", size: "16M" } }],
};

it("a controller crash in the middle of writes and reads goes unnoticed by the VM", async () => {
  const tb = await createTestbed(scenario);
  const vm = tb.vm("db");
  const states: string[] = [];
  tb.on("controller", (e) => states.push(`${e.controller}: ${e.from} → ${e.to}`));
  const block = (i: number) => new Uint8Array(4096).fill(i);

  // 16 writes in flight; controller A crashes 2 µs later and comes back after 500 µs.
  const writes = Array.from({ length: 16 }, (_, i) => vm.write(i, block(i + 1)));
  tb.inject({ kind: "crash-controller", controller: "A", for: "500us" }, { at: tb.now + 2000 });
  await Promise.all(writes);
  for (let i = 0; i < 16; i++) expect(await vm.read(i)).toEqual(block(i + 1));

  tb.runFor("1ms");
  expect(states[0]).toBe("A: up → crashed");
  expect(tb.remote.nic.failovers().takeovers).toBeGreaterThanOrEqual(1);
  expect(tb.counter("nvmf_queue_lost")).toBe(0); // the DPU's queues never saw the loss
});
