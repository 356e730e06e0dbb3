// Example: a hostile guest. After submitting a read, the guest rewrites its NVMe command's
// data pointer (PRP1) to an address outside its RAM before the card fetches it — a
// time-of-check/time-of-use attack. The firmware must answer with an error completion,
// count the reason, never touch memory outside the VM, and leave the other VM alone.
//
// Copy this file into your project's tests; it needs only vitest and wasm-dpu.
import { it, expect } from "vitest";
import { createTestbed, IoError } from "wasm-dpu";

it("a guest that points its command outside its RAM gets an error, not another VM's data", async () => {
  const tb = await createTestbed("local", { trace: true });
  const guest = tb.vm("vm1-nvme");
  const neighbour = tb.vm("vm0-virtio");
  await neighbour.write(0, new Uint8Array(4096).fill(0x42));
  const neighbourRam = neighbour.peek(0, neighbour.ram.size);

  // The next command goes into the first I/O SQ at its current tail; PRP1 is at byte 24 (NVMe 2.0 §4.1).
  const sq = guest.nvme.io[0]!; // the guest's NVMe driver: raw queue access
  const prp1 = sq.sqGpa + sq.tail * 64 + 24;
  const outside = guest.ram.size + 0x1000; // the first page past the VM's RAM
  const le64 = (v: number) => Array.from({ length: 8 }, (_, i) => Math.floor(v / 2 ** (8 * i)) & 0xff);
  tb.inject({ kind: "corrupt-guest-memory", vm: guest.name, gpa: prp1, bytes: le64(outside) },
    { on: (e) => e.kind === "doorbell" && e.vm === guest.name }); // right after the SQ tail doorbell

  const err = await guest.read(0, 1).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(IoError);
  expect((err as IoError).status).not.toBe(0);
  expect(tb.errors()).toEqual({ err_nvme_prp_out_of_window: 1 });
  // The firmware's own DMA trace shows the refused range.
  expect(tb.trace.events({ kinds: ["dma"], where: (e) => e.kind === "dma" && e.denied })).toEqual([
    expect.objectContaining({ vm: guest.name, gpa: outside, denied: true }),
  ]);
  expect(Buffer.compare(neighbour.peek(0, neighbour.ram.size), neighbourRam)).toBe(0);
  // The device still works for well-behaved commands.
  await guest.write(0, new Uint8Array(4096).fill(1));
  expect((await guest.read(0))[0]).toBe(1);
});
