// Fault injection through the testbed API: guest memory corruption at a time or on a
// match, backend IO errors, dropped and delayed doorbells, device reset, and the faults
// that need a fabric refused on a testbed without one (test/api/remote.test.ts has them live).
import { describe, it, expect } from "vitest";
import { createTestbed, IoError, type FaultEvent, type DoorbellEvent } from "../../host/index.js";
import { BlkOp } from "../../host/guest/driver.js";
import { SMALL } from "./small.js";

describe("faults", () => {
  it("corrupts guest memory at a virtual time", async () => {
    const tb = await createTestbed(SMALL);
    const vm = tb.vm("blk");
    vm.poke(0x3000, [0xf0, 0x0f]);
    const h = tb.inject({ kind: "corrupt-guest-memory", vm: "blk", gpa: 0x3000, xor: 0xff, length: 2 }, { at: "2us" });
    tb.runFor("1us");
    expect([...vm.peek(0x3000, 2)]).toEqual([0xf0, 0x0f]);
    expect(h.fired).toBe(0);
    tb.runFor("2us");
    expect([...vm.peek(0x3000, 2)]).toEqual([0x0f, 0xf0]);
    expect(h.fired).toBe(1);
  });

  it("corrupts guest memory on a match: the write data changes after the doorbell, before the firmware copies it", async () => {
    const tb = await createTestbed(SMALL);
    const vm = tb.vm("nvme");
    const faults: FaultEvent[] = [];
    tb.on("fault", (e) => faults.push(e));
    // API IO buffers start at the first free page after the driver's rings: find it with a probe write.
    const probe = vm.submit(BlkOp.WRITE, 0, 1, new Uint8Array(4096));
    await tb.wait(probe);
    let gpa = -1;
    tb.on("dma", (e) => { if (e.len === 4096 && gpa < 0) gpa = e.gpa; });
    await vm.write(0, new Uint8Array(4096));
    tb.inject({ kind: "corrupt-guest-memory", vm: "nvme", gpa, bytes: [0xde, 0xad] }, { on: (e) => e.kind === "doorbell" && e.vm === "nvme" });
    await vm.write(5, new Uint8Array(4096).fill(1));
    expect([...(await vm.read(5)).subarray(0, 3)]).toEqual([0xde, 0xad, 1]);
    expect(faults.map((f) => f.fault)).toEqual(["corrupt-guest-memory"]);
  });

  it("backend errors: the matching IO completes with an error and err_backend_io is counted", async () => {
    const tb = await createTestbed(SMALL, { hostBackends: true });
    await tb.vm("nvme").write(7, new Uint8Array(4096).fill(3));
    const h = tb.inject({ kind: "backend-error", vm: "nvme", op: "read", lba: 7 });
    const err = await tb.vm("nvme").read(7).catch((e) => e);
    expect(err).toBeInstanceOf(IoError);
    expect(h.fired).toBe(1);
    expect(tb.counter("err_backend_io")).toBe(1);
    expect((await tb.vm("nvme").read(7))[0]).toBe(3); // count 1: the next read succeeds
    const inline = await createTestbed(SMALL);
    expect(() => inline.inject({ kind: "backend-error", vm: "blk" })).toThrow(/served inline by the firmware; create the testbed with hostBackends: true/);
  });

  it("drops a doorbell: the NVMe IO waits until the next SQ tail doorbell of that queue", async () => {
    const tb = await createTestbed(SMALL);
    const vm = tb.vm("nvme");
    const dbs: DoorbellEvent[] = [];
    tb.on("doorbell", (e) => dbs.push(e));
    tb.inject({ kind: "drop-doorbell", vm: "nvme", queue: 1 });
    const lost = vm.submit(BlkOp.WRITE, 0, 1, new Uint8Array(4096).fill(1));
    tb.runFor("20us");
    expect(lost.result).toBeUndefined();
    expect(dbs[0]).toMatchObject({ vm: "nvme", queue: 1, dropped: true });
    const next = vm.submit(BlkOp.WRITE, 1, 1, new Uint8Array(4096).fill(2));
    const [a, b] = await tb.wait([lost, next]);
    expect([a.status, b.status]).toEqual([0, 0]);
    expect(a.completed).toBe(b.completed);
  });

  it("drops a virtio notification: with EVENT_IDX the driver is not asked to notify again, so the queue stays stuck", async () => {
    const tb = await createTestbed(SMALL);
    const vm = tb.vm("blk");
    tb.inject({ kind: "drop-doorbell", vm: "blk" });
    const lost = vm.submit(BlkOp.WRITE, 0, 1, new Uint8Array(512));
    const next = vm.submit(BlkOp.WRITE, 1, 1, new Uint8Array(512));
    await expect(tb.wait([lost, next], { timeout: "50us" })).rejects.toThrow(/2 IOs completing did not hold/);
  });

  it("delays a doorbell by a virtual time", async () => {
    const tb = await createTestbed(SMALL);
    tb.inject({ kind: "delay-doorbell", vm: "nvme", delay: "50us" });
    const h = tb.vm("nvme").submit(BlkOp.READ, 0, 1);
    const r = await tb.wait(h);
    expect(r.completed - r.submitted).toBeGreaterThanOrEqual(50_000);
    const quick = await tb.wait(tb.vm("nvme").submit(BlkOp.READ, 0, 1));
    expect(quick.completed - quick.submitted).toBeLessThan(5_000);
  });

  it("a device reset leaves an IO in flight without completion; runUntil says what did not happen", async () => {
    const tb = await createTestbed(SMALL);
    tb.inject({ kind: "drop-doorbell", vm: "nvme" });
    const h = tb.vm("nvme").submit(BlkOp.READ, 0, 1);
    tb.inject({ kind: "reset-device", vm: "nvme" }, { at: "1us" });
    await expect(tb.wait(h, { timeout: "100us" })).rejects.toThrow(/read at LBA 0 on nvme completing did not hold within 100000 ns/);
  });

  it("refuses fabric faults without remote disks, reserved faults, and bad fault arguments", async () => {
    const tb = await createTestbed(SMALL);
    expect(() => tb.inject({ kind: "link-down", link: "a" })).toThrow(/^inject link-down: this testbed has no remote disks/);
    expect(() => tb.inject({ kind: "crash-controller", controller: "A" })).toThrow(/^inject crash-controller: this testbed has no remote disks/);
    expect(() => tb.inject({ kind: "corrupt-guest-memory", vm: "blk", gpa: 4 << 20, xor: 1 })).toThrow(/VM blk: peek at 0x400000 \+ 1 bytes is outside its RAM/);
    expect(() => tb.inject({ kind: "reset-device", vm: "db" })).toThrow(/unknown VM "db"/);
    tb.runFor("1us");
    expect(() => tb.inject({ kind: "reset-device", vm: "blk" }, { at: 10 })).toThrow(/in the past/);
    expect(() => tb.inject({ kind: "reset-device", vm: "blk" }, { on: "wqe" })).toThrow(/trigger on "wqe": this testbed has no remote disks/);
  });
});
