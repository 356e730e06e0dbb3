// Example: end-to-end protection on a remote disk. A block goes bad on the storage target
// (a flipped byte, its protection information left as it was): the storage-side NIC's DIF
// check catches it, so the VM's read of that block fails instead of returning bad data,
// while the blocks around it still read fine.
import { it, expect } from "vitest";
import { createTestbed, IoError } from "wasm-dpu";

const scenario = {
  name: "dif",
  target: { controllers: 2, protection: true }, // 8 bytes of PI per block, checked by the NIC
  vms: [{ name: "db", device: "nvme", ram: "16M", disk: { backend: "memory", transport: "rdma", size: "16M" } }],
};

it("a block corrupted on the target fails its read with IoError; other blocks read fine", async () => {
  const tb = await createTestbed(scenario);
  const vm = tb.vm("db");
  const data = new Uint8Array(4 * 4096).map((_, i) => (i * 7) & 0xff);
  await vm.write(100, data);

  const bad = tb.inject({ kind: "corrupt-dif", vm: "db", lba: 102 });
  expect(bad.fired).toBe(1);

  const err = await vm.read(102).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(IoError);
  expect((err as IoError).lba).toBe(102);
  expect(await vm.read(100, 2)).toEqual(data.subarray(0, 2 * 4096));
  expect(await vm.read(103)).toEqual(data.subarray(3 * 4096));
  expect(tb.nicErrors()).toEqual({ err_nic_dif_guard: 1 });
});
