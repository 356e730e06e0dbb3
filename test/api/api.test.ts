// The testbed API: VMs reached by name, IO with async/await on the virtual clock,
// the clock controls, counters by name, hooks and clear errors for misuse.
import { describe, it, expect } from "vitest";
import { createTestbed, TestbedError, IoError, type TestbedEvent, type DoorbellEvent, type StateEvent } from "../../host/index.js";
import { BlkOp } from "../../host/guest/driver.js";
import { SMALL } from "./small.js";

const block = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("createTestbed", () => {
  it("builds from a built-in name, a scenario object or a file path, and reaches every VM", async () => {
    const tb = await createTestbed("local");
    expect(tb.vms.map((v) => [v.name, v.device, v.func])).toEqual([["vm0-virtio", "virtio-blk", 0], ["vm1-nvme", "nvme", 1]]);
    expect(tb.vm("vm1-nvme")).toBe(tb.vm(1));
    expect(tb.now).toBe(0);
    const small = await createTestbed(SMALL);
    expect(small.vm("blk").blockSize).toBe(512);
    expect(small.vm("nvme").capacityBlocks).toBe(512);
    expect(small.dpu.card).toBe(small.card);
  });

  it("names the field of a bad scenario and the VMs when one is unknown", async () => {
    await expect(createTestbed({ vms: [{ name: "x", device: "scsi", disk: { backend: "memory", size: "1M" } }] })).rejects.toThrow(/vms\[0\]\.device/);
    await expect(createTestbed("no-such-scenario")).rejects.toThrow(/not a built-in scenario/);
    const tb = await createTestbed(SMALL);
    expect(() => tb.vm("web")).toThrow(new TestbedError(`unknown VM "web" (this testbed has 0: "blk", 1: "nvme")`));
    expect(() => tb.vm(5)).toThrow(/unknown VM 5/);
  });
});

describe("IO with async/await", () => {
  it("writes and reads back through virtio-blk and NVMe; the firmware counts them", async () => {
    const tb = await createTestbed(SMALL);
    for (const vm of tb.vms) {
      const data = block(2 * vm.blockSize, 0x5a);
      data[vm.blockSize] = 0x11;
      await vm.write(10, data);
      const back = await vm.read(10, 2);
      expect(back).toEqual(data);
    }
    expect(tb.counter("virtio_requests")).toBe(2);
    expect(tb.counter("nvme_io_commands")).toBe(2);
    expect(tb.counter("requests_completed")).toBe(4);
    expect(tb.now).toBeGreaterThan(0);
    expect(tb.errors()).toEqual({});
  });

  it("runs IOs concurrently: submit several, then wait for all", async () => {
    const tb = await createTestbed(SMALL);
    const vm = tb.vm("nvme");
    const hs = [0, 1, 2, 3].map((i) => vm.submit(BlkOp.WRITE, i, 1, block(4096, i + 1)));
    expect(hs.every((h) => h.result === undefined)).toBe(true);
    const rs = await tb.wait(hs);
    expect(rs.map((r) => r.status)).toEqual([0, 0, 0, 0]);
    expect((await vm.read(2))[0]).toBe(3);
    // submitted at the same time, completed by the same poll
    expect(new Set(rs.map((r) => r.completed)).size).toBe(1);
  });

  it("rejects an IO beyond the disk with IoError carrying the device's status", async () => {
    const tb = await createTestbed(SMALL);
    const err = await tb.vm("blk").read(4096, 1).catch((e) => e);
    expect(err).toBeInstanceOf(IoError);
    expect(err.status).not.toBe(0);
    expect(err.message).toMatch(/^blk: read at LBA 4096 failed with status/);
    expect(tb.counter("err_lba_out_of_range") + tb.counter("err_nvme_lba_out_of_range")).toBe(1);
  });
});

describe("flush, discard, write zeroes and raw driver access", () => {
  it("write zeroes and discard read back as zeros on both devices; flush succeeds", async () => {
    const tb = await createTestbed(SMALL);
    for (const vm of tb.vms) {
      await vm.write(4, block(4 * vm.blockSize, 0xee));
      await vm.writeZeroes(4, 2);
      await vm.discard(6, 1);
      await vm.flush();
      const back = await vm.read(4, 4);
      const bs = vm.blockSize;
      expect([back[0], back[2 * bs], back[3 * bs]]).toEqual([0, 0, 0xee]);
    }
    expect(tb.errors()).toEqual({});
  });

  it("gives the typed guest driver of each device, and names the mismatch", async () => {
    const tb = await createTestbed(SMALL);
    expect(tb.vm("nvme").nvme.io).toHaveLength(1);
    expect(tb.vm("blk").virtio.ring(0).size).toBe(64);
    expect(() => tb.vm("blk").nvme).toThrow(new TestbedError("VM blk is a virtio-blk device, not NVMe"));
    expect(() => tb.vm("nvme").virtio).toThrow(new TestbedError("VM nvme is an nvme device, not virtio-blk"));
  });
});

describe("the virtual clock", () => {
  it("step, runFor and runUntil advance it; misuse names what was wrong", async () => {
    const tb = await createTestbed(SMALL);
    const pollNs = tb.scenario.timing.pollNs;
    expect(tb.step()).toBe(pollNs);
    expect(tb.step(3)).toBe(4 * pollNs);
    tb.runFor("10us");
    expect(tb.now).toBeGreaterThanOrEqual(4 * pollNs + 10_000);
    const t = tb.now;
    tb.runUntil(() => tb.now >= t + 5 * pollNs);
    expect(tb.now).toBe(t + 5 * pollNs);
    expect(() => tb.runFor(-1)).toThrow(/would run the clock backwards/);
    expect(() => tb.runTo(0)).toThrow(/before now .* only runs forwards/);
    expect(() => tb.runFor("soon")).toThrow(/runFor/);
    expect(() => tb.runUntil(() => false, { timeout: "1us", what: "the moon" })).toThrow(/the moon did not hold within 1000 ns/);
  });

  it("runs the scenario's jobs with workload: true, to the same result as runScenario", async () => {
    const { runScenario, parseScenario } = await import("../../host/index.js");
    const tb = await createTestbed(SMALL, { workload: true });
    const r = tb.runWorkload();
    const ref = await runScenario(parseScenario(structuredClone(SMALL)));
    const strip = (x: typeof r) => ({ ...x, wallNs: 0, jobs: x.jobs.map((j) => ({ ...j, wallNs: 0 })) });
    expect(strip(r)).toEqual(strip(ref));
    expect(r.jobs.every((j) => j.errors === 0 && j.verifyErrors === 0)).toBe(true);
  });
});

describe("counters", () => {
  it("reads every counter by name and refuses unknown names with a hint", async () => {
    const tb = await createTestbed(SMALL);
    tb.step();
    expect(tb.counter("polls")).toBe(tb.counters().polls);
    expect(() => tb.counter("nvme_io")).toThrow(/unknown counter "nvme_io" \(did you mean .*nvme_io_commands/);
    expect(() => tb.counter("COUNT")).toThrow(/unknown counter/);
  });
});

describe("hooks", () => {
  it("doorbells, submits, completions and interrupts arrive in order on the virtual clock", async () => {
    const tb = await createTestbed(SMALL);
    const seen: TestbedEvent[] = [];
    const off = [tb.on("doorbell", (e) => seen.push(e)), tb.on("submit", (e) => seen.push(e)), tb.on("completion", (e) => seen.push(e)), tb.on("irq", (e) => seen.push(e))];
    await tb.vm("blk").write(0, block(512, 1));
    expect(seen.map((e) => e.kind)).toEqual(["submit", "doorbell", "irq", "completion"]);
    const db = seen[1] as DoorbellEvent;
    expect([db.vm, db.func, db.queue]).toEqual(["blk", 0, 0]);
    expect(seen[3]).toMatchObject({ kind: "completion", vm: "blk", status: 0, op: "write", lba: 0, source: "api" });
    for (const o of off) o();
    await tb.vm("blk").write(0, block(512, 1));
    expect(seen).toHaveLength(4);
  });

  it("DMA accesses are recorded by the firmware only while someone listens", async () => {
    const tb = await createTestbed(SMALL);
    const vm = tb.vm("nvme");
    await vm.write(1, block(4096, 9));
    const dma: TestbedEvent[] = [];
    const off = tb.on("dma", (e) => dma.push(e));
    await vm.read(1);
    off();
    const data = dma.filter((e) => e.kind === "dma" && e.len === 4096);
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ vm: "nvme", guest: 1, denied: false });
    const n = dma.length;
    await vm.read(1);
    expect(dma).toHaveLength(n);
    expect(tb.counter("trace_lost")).toBe(0);
  });

  it("state transitions: a device reset moves the NVMe controller READY → DISABLED and its SQs to NONE", async () => {
    const tb = await createTestbed(SMALL);
    const st: StateEvent[] = [];
    tb.on("state", (e) => st.push(e));
    tb.inject({ kind: "reset-device", vm: "nvme" });
    expect(st.map((e) => `${e.machine}${e.queue ?? ""}: ${e.from} → ${e.to}`)).toEqual(
      expect.arrayContaining(["controller: READY → DISABLED", "sq0: ACTIVE → NONE", "sq1: ACTIVE → NONE"]));
    tb.inject({ kind: "reset-device", vm: "blk" });
    expect(st.at(-1)).toMatchObject({ vm: "blk", machine: "device_status", from: "DRIVER_OK", to: "RESET" });
  });

  it("refuses unknown event kinds, and storage-side kinds (frame, wqe, controller) without a fabric", async () => {
    const tb = await createTestbed(SMALL);
    expect(() => tb.on("packet" as never, () => {})).toThrow(/unknown event kind "packet"/);
    expect(() => tb.on("wqe", () => {})).toThrow(/on\("wqe"\): this testbed has no remote disks/);
    expect(() => tb.on("controller", () => {})).toThrow(/on\("controller"\): this testbed has no remote disks/);
    expect(() => tb.on("frame", () => {})).toThrow(/on\("frame"\): this testbed has no remote disks/);
    expect(tb.links).toEqual([]);
  });
});

describe("guest memory access", () => {
  it("peek/poke check the address against the VM's RAM", async () => {
    const tb = await createTestbed(SMALL);
    const vm = tb.vm("blk");
    vm.poke(0x2000, [1, 2, 3]);
    expect([...vm.peek(0x2000, 3)]).toEqual([1, 2, 3]);
    expect(() => vm.peek(4 << 20, 1)).toThrow(new TestbedError("VM blk: peek at 0x400000 + 1 bytes is outside its RAM (0..0x400000)"));
    expect(() => vm.poke(-1, [0])).toThrow(/VM blk: poke at -0x1/);
  });
});
