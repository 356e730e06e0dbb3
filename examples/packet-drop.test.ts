// Example: a lost packet on the storage network. The read's data (an RDMA WRITE from the
// storage-side NIC to the DPU) is dropped on the wire; the RC transport notices the gap,
// resends, and the VM's read still completes with the right bytes — no error, only a resend.
import { it, expect } from "vitest";
import { createTestbed } from "wasm-dpu";

// One NVMe VM whose disk sits behind the storage target, on a link that loses nothing by itself.
const scenario = {
  name: "packet-drop",
  target: { controllers: 2 },
  vms: [{ name: "db", device: "nvme", ram: "16M", disk: { backend: "memory", transport: "rdma", size: "16M" } }],
};

it("a dropped data packet of a read is resent by the RC transport; the read returns the right bytes", async () => {
  const tb = await createTestbed(scenario);
  const vm = tb.vm("db");
  const data = new Uint8Array(4096).map((_, i) => i & 0xff);
  await vm.write(8, data);

  // Drop the first RDMA WRITE carrying read data to the host (BTH opcode RC_WRITE_ONLY at MTU 4096).
  const drop = tb.inject({ kind: "drop-frame", dir: "to-host", match: (f) => f.op === "RC_WRITE_ONLY" });
  const frames: string[] = [];
  tb.on("frame", (e) => { if (e.dir === "tx" && e.op === "RC_WRITE_ONLY") frames.push(`${e.psn}${e.dropped ? " lost" : ""}`); });

  expect(await vm.read(8)).toEqual(data);
  expect(drop.fired).toBe(1);
  expect(tb.link().stats().ba.lost).toBe(1); // "ba": NIC → DPU
  expect(tb.nicCounter("rdma_rc_resends")).toBeGreaterThanOrEqual(1);
  expect(frames).toEqual([`${frames[1]} lost`, frames[1]]); // the same PSN, sent twice
  // The DPU saw the next packet (the response capsule) out of sequence: counted, NAKed, resent.
  expect(tb.errors()).toEqual({ err_rdma_psn_out_of_seq: 1 });
});
