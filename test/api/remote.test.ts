// The testbed API on a testbed with remote disks: the DPU ↔ NIC link, the storage-side NIC
// and its controllers reached by name; frame and link events; frame, link and DIF faults
// whose `fired` counts real hits; and the refusals on a testbed without a fabric.
import { describe, it, expect } from "vitest";
import { createTestbed, restoreTestbed, TestbedError, IoError, type TestbedEvent, type FaultEvent } from "../../host/index.js";
import type { FrameEvent, LinkEvent, WqeEvent } from "../../host/trace/events.js";
import { BlkOp } from "../../host/guest/driver.js";
import { MemorySink, PcapWriter, readPcap } from "../../host/fabric/pcap.js";
import { SMALL } from "./small.js";

const remoteVm = (name: string) => ({ name, device: "nvme", ram: "16M", disk: { backend: "memory", transport: "rdma", size: "16M" } });
/** One remote NVMe VM, a lossless link, two controllers. */
const REMOTE = { name: "remote", target: { controllers: 2 }, vms: [remoteVm("db")] };
const page = (fill: number) => new Uint8Array(4096).fill(fill);
const NO_FABRIC = /this testbed has no remote disks, so no fabric, NIC or controllers \(give a VM's disk "transport": "rdma" and the scenario a "target", or use the built-in scenario "rdma"\)/;

describe("reaching the storage side", () => {
  it("the link, the NIC, its counters by name and the controllers' figures", async () => {
    const tb = await createTestbed(REMOTE);
    const link = tb.link();
    expect(link.name).toBe("dpu-nic");
    expect(tb.link("dpu-nic")).toBe(link);
    expect(tb.links).toEqual([link]);
    expect(tb.remote.link).toBe(link);
    expect(tb.nic.card).toBe(tb.remote.nicCard);
    expect(tb.controllers).toHaveLength(2);
    const before = tb.controllerStats().reduce((n, c) => n + (c.commands.write ?? 0) + (c.commands.read ?? 0), 0);
    await tb.vm("db").write(0, page(1));
    await tb.vm("db").read(0);
    const stats = tb.controllerStats();
    expect(stats.reduce((n, c) => n + (c.commands.write ?? 0), 0)).toBe(1);
    expect(stats.reduce((n, c) => n + (c.commands.read ?? 0), 0) + stats.reduce((n, c) => n + (c.commands.write ?? 0), 0) - before).toBe(2);
    expect(tb.nicCounter("rdma_rc_resends")).toBe(0);
    expect(tb.nicCounter("nic_wqes_fetched")).toBe(tb.nicCounters().nic_wqes_fetched);
    expect(tb.nicCounter("nic_wqes_fetched")).toBeGreaterThan(0);
    expect(tb.nicErrors()).toEqual({});
    expect(() => tb.nicCounter("rdma_rc_resend")).toThrow(new TestbedError(`unknown counter "rdma_rc_resend" (did you mean rdma_rc_resends?)`));
    expect(() => tb.link("eth0")).toThrow(new TestbedError(`unknown link "eth0" (this testbed has "dpu-nic")`));
  });

  it("a testbed without remote disks says so, and how to get a fabric", async () => {
    const tb = await createTestbed(SMALL);
    expect(tb.links).toEqual([]);
    expect(tb.controllers).toEqual([]);
    expect(tb.controllerStats()).toEqual([]);
    expect(() => tb.remote).toThrow(NO_FABRIC);
    expect(() => tb.nic).toThrow(/^nic: this testbed has no remote disks/);
    expect(() => tb.link()).toThrow(/^link: this testbed has no remote disks/);
    expect(() => tb.nicCounter("polls")).toThrow(/^nicCounter\("polls"\): this testbed has no remote disks/);
    expect(() => tb.on("frame", () => {})).toThrow(/^on\("frame"\): this testbed has no remote disks/);
    expect(() => tb.on("link", () => {})).toThrow(NO_FABRIC);
    for (const f of [{ kind: "drop-frame" }, { kind: "corrupt-frame" }, { kind: "delay-frame" }, { kind: "link-down" }, { kind: "link-up" }, { kind: "corrupt-dif", vm: "nvme", lba: 0 }] as const) {
      expect(() => tb.inject(f)).toThrow(new RegExp(`^inject ${f.kind}: this testbed has no remote disks`));
    }
    expect(() => tb.inject({ kind: "reset-device", vm: "blk" }, { on: "frame" })).toThrow(/^inject: trigger on "frame": this testbed has no remote disks/);
    // Tracing everything on a local testbed is fine: there are just no frames.
    tb.trace.start();
    await tb.vm("nvme").write(0, page(2));
    expect(tb.trace.events({ kinds: ["frame", "link"] })).toEqual([]);
  });

  it("pcap: every frame of the testbed's fabric into a capture (here in memory, as a browser would)", async () => {
    const sink = new MemorySink();
    const w = new PcapWriter(sink);
    const tb = await createTestbed(REMOTE, { pcap: w });
    await tb.vm("db").write(0, page(3));
    w.close();
    const { header, records } = readPcap(sink.bytes());
    expect(header.linkType).toBe(1); // LINKTYPE_ETHERNET
    expect(records.length).toBe(tb.link().stats().ab.delivered + tb.link().stats().ba.delivered);
    expect(() => tb.snapshot()).toThrow(/writes a capture file/);
    await expect(createTestbed(SMALL, { pcap: new PcapWriter(new MemorySink()) })).rejects.toThrow(/has no remote disks, so no frame would cross a fabric/);
  });

  it("snapshot and restore of a remote testbed (both cards, the controllers, the fabric, frames in flight under loss) resume to the same result", async () => {
    const a = await createTestbed("rdma", { workload: true, number_ios: 2000 });
    a.runFor("300us"); // mid-run: IO in flight on the link, in the NIC and at the controllers
    const snap = a.snapshot();
    expect(snap.memories).toHaveLength(2);
    const r1 = a.runWorkload();
    const b = await restoreTestbed(snap, { workload: true });
    const r2 = b.runWorkload();
    const det = (r: typeof r1) => JSON.stringify({ ...r, wallNs: 0 });
    expect(r1.jobs.map((j) => [j.errors, j.verifyErrors])).toEqual([[0, 0], [0, 0]]);
    expect(det(r2)).toBe(det(r1));
    expect(r2.target!.link["dpu->nic"].lost).toBeGreaterThan(0);
  });
});

describe("frame and link events", () => {
  it("every frame of an IO, decoded from its headers, sent and arriving, both ways", async () => {
    const tb = await createTestbed(REMOTE);
    const frames: FrameEvent[] = [];
    const off = tb.on("frame", (e) => frames.push(e));
    await tb.vm("db").write(3, page(3));
    off();
    // The command capsule: a 64-byte SQE in one SEND ONLY: Ethernet 14 + IPv4 20 + UDP 8 + BTH 12 + 64 + ICRC 4.
    const capsule = frames[0]!;
    expect(capsule).toMatchObject({ kind: "frame", link: "dpu-nic", dir: "tx", direction: "to-target", op: "RC_SEND_ONLY", opcode: 0x04, length: 122, ackReq: true });
    const qp = capsule.destQp!;
    expect(frames[1]!.t).toBeGreaterThan(capsule.t);
    expect(frames.find((f) => f.dir === "rx" && f.psn === capsule.psn && f.direction === "to-target")).toMatchObject({ op: "RC_SEND_ONLY", destQp: qp, length: 122 });
    // A write: the target READs the data from the host (4 KiB + headers), then SENDs the response capsule (16-byte CQE).
    const toHost = frames.filter((f) => f.dir === "tx" && f.direction === "to-host").map((f) => f.op);
    expect(toHost).toEqual(expect.arrayContaining(["RC_READ_REQUEST", "RC_SEND_ONLY"]));
    expect(frames.find((f) => f.op === "RC_READ_RESPONSE_ONLY")).toMatchObject({ direction: "to-target", length: 14 + 20 + 8 + 12 + 4 + 4096 + 4 });
    // Lossless: every frame sent arrived, once.
    expect(frames.filter((f) => f.dir === "tx")).toHaveLength(frames.filter((f) => f.dir === "rx").length);
    expect(frames.every((f) => f.dropped === undefined)).toBe(true);
    // Nothing more once nobody listens.
    await tb.vm("db").read(3);
    expect(frames.at(-1)!.t).toBeLessThan(tb.now);
    expect(frames.filter((f) => f.op === "RC_WRITE_ONLY")).toEqual([]);
  });

  it("is deterministic: the same scenario, seed and IO give the same frame trace under seeded loss", async () => {
    const lossy = { ...REMOTE, seed: 9, fabric: { loss: 0.05, reorder: 0.05 } };
    const run = async () => {
      const tb = await createTestbed(lossy, { trace: { kinds: ["frame"] } });
      const vm = tb.vm("db");
      await tb.wait([0, 1, 2, 3].map((i) => vm.submit(BlkOp.WRITE, i, 1, page(i))));
      expect(await vm.read(0, 4)).toEqual(new Uint8Array([...page(0), ...page(1), ...page(2), ...page(3)]));
      return tb.trace.toJsonLines();
    };
    const a = await run();
    expect(a).toMatch(/"dropped":"lost"/);
    expect(await run()).toBe(a);
  });

  it("the fabric's event hook is installed only while someone listens", async () => {
    const tb = await createTestbed(REMOTE);
    const fabric = tb.remote.fabric;
    expect(fabric.onEvent).toBeUndefined();
    const off = tb.on("link", () => {});
    expect(fabric.onEvent).toBeTypeOf("function");
    off();
    expect(fabric.onEvent).toBeUndefined();
    tb.trace.start({ kinds: ["frame"] });
    expect(fabric.onEvent).toBeTypeOf("function");
    tb.trace.stop();
    expect(fabric.onEvent).toBeUndefined();
    // A trigger on "frame" listens until it fires, then stops.
    const h = tb.inject({ kind: "link-down" }, { on: "frame" });
    expect(fabric.onEvent).toBeTypeOf("function");
    tb.vm("db").submit(BlkOp.READ, 0, 1);
    tb.runFor("2us");
    expect(h.fired).toBe(1);
    expect(fabric.onEvent).toBeUndefined();
  });

  it("the trace records frames and link changes; Chrome trace puts each link direction on its own thread", async () => {
    const tb = await createTestbed(REMOTE, { trace: true });
    await tb.vm("db").write(1, page(1));
    tb.inject({ kind: "link-down", for: "10us" });
    tb.runFor("20us");
    const links = tb.trace.events({ kinds: ["link"] }) as LinkEvent[];
    expect(links.map((e) => [e.link, e.up])).toEqual([["dpu-nic", false], ["dpu-nic", true]]);
    expect(links[1]!.t - links[0]!.t).toBeGreaterThanOrEqual(10_000);
    const lines = tb.trace.toJsonLines({ kinds: ["frame"] }).trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ kind: "frame", dir: "tx", direction: "to-target", op: "RC_SEND_ONLY", length: 122 });
    const ct = tb.trace.toChromeTrace().traceEvents as { ph: string; name: string; tid: number; args: { name?: string } }[];
    const threads = ct.filter((e) => e.ph === "M" && e.name === "thread_name").map((e) => e.args.name);
    expect(threads).toEqual(expect.arrayContaining(["link dpu-nic to-target", "link dpu-nic to-host", "link dpu-nic", "vm db"]));
    expect(ct.some((e) => e.ph === "i" && e.name === "tx RC_SEND_ONLY psn " + lines[0].psn)).toBe(true);
    expect(ct.some((e) => e.ph === "i" && e.name === "link dpu-nic down")).toBe(true);
  });
});

describe("frame faults", () => {
  it("drop-frame: the first response capsule to the host is lost; the NIC resends it and the read completes", async () => {
    const tb = await createTestbed(REMOTE);
    const vm = tb.vm("db");
    await vm.write(5, page(5));
    const faults: FaultEvent[] = [];
    tb.on("fault", (e) => faults.push(e));
    const drop = tb.inject({ kind: "drop-frame", dir: "to-host", match: (f) => f.op === "RC_SEND_ONLY" });
    expect(await vm.read(5)).toEqual(page(5));
    expect(drop.fired).toBe(1);
    expect(tb.link().stats().ba.lost).toBe(1);
    expect(tb.link().stats().ab.lost).toBe(0);
    expect(tb.nicCounter("rdma_rc_resends")).toBeGreaterThanOrEqual(1);
    expect(faults).toEqual([expect.objectContaining({ fault: "drop-frame", detail: expect.objectContaining({ direction: "to-host", op: "RC_SEND_ONLY" }) })]);
    // Used up: the next read loses nothing.
    await vm.read(5);
    expect(tb.link().stats().ba.lost).toBe(1);
  });

  it("count is shared by both ways: fired counts frames really dropped, and the link agrees", async () => {
    const tb = await createTestbed(REMOTE);
    const drop = tb.inject({ kind: "drop-frame", count: 3, match: (f) => f.op === "RC_ACK" });
    await tb.vm("db").write(0, page(7));
    await tb.vm("db").write(1, page(8));
    tb.runFor("300us");
    const s = tb.link().stats();
    expect(drop.fired).toBe(3);
    expect(s.ab.lost + s.ba.lost).toBe(3);
    expect(await tb.vm("db").read(0, 2)).toEqual(new Uint8Array([...page(7), ...page(8)]));
  });

  it("count 1 on both ways hits one frame even when both ways carry frames in the same round", async () => {
    // Eight writes in flight keep frames going both ways; the fault is armed at several moments of it.
    for (const after of [5500, 6000, 6500, 7000, 7500]) {
      const tb = await createTestbed(REMOTE);
      const vm = tb.vm("db");
      const hs = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => vm.submit(BlkOp.WRITE, i, 1, page(i)));
      const drop = tb.inject({ kind: "drop-frame" }, { at: tb.now + after });
      await tb.wait(hs, { timeout: "10ms" });
      const s = tb.link().stats();
      expect([after, drop.fired, s.ab.lost + s.ba.lost]).toEqual([after, 1, 1]);
    }
  });

  it("a cancelled frame fault hits nothing", async () => {
    const tb = await createTestbed(REMOTE);
    const drop = tb.inject({ kind: "drop-frame" });
    drop.cancel();
    await tb.vm("db").write(0, page(1));
    expect(drop.fired).toBe(0);
    expect(tb.link().stats().ab.lost + tb.link().stats().ba.lost).toBe(0);
  });

  it("corrupt-frame: one bit flipped, the DPU's ICRC check drops the frame, the RC transport recovers", async () => {
    const tb = await createTestbed(REMOTE);
    await tb.vm("db").write(2, page(2));
    const bad = tb.inject({ kind: "corrupt-frame", dir: "to-host", match: (f) => f.op === "RC_WRITE_ONLY", bit: 8 * 100 });
    expect(await tb.vm("db").read(2)).toEqual(page(2));
    expect(bad.fired).toBe(1);
    expect(tb.link().stats().ba.corrupted).toBe(1);
    expect(tb.counter("err_rdma_bad_icrc")).toBe(1);
    expect(tb.nicCounter("rdma_rc_resends")).toBeGreaterThanOrEqual(1);
  });

  it("delay-frame: the response capsule arrives that much later, and so does the completion", async () => {
    const tb = await createTestbed(REMOTE);
    const vm = tb.vm("db");
    const quick = await tb.wait(vm.submit(BlkOp.READ, 0, 1));
    const late = tb.inject({ kind: "delay-frame", dir: "to-host", delay: "40us", match: (f) => f.op === "RC_SEND_ONLY" });
    const slow = await tb.wait(vm.submit(BlkOp.READ, 0, 1));
    expect(late.fired).toBe(1);
    expect(tb.link().stats().ba.delayed).toBe(1);
    expect(slow.completed - slow.submitted).toBeGreaterThanOrEqual(quick.completed - quick.submitted + 40_000);
  });

  it("refuses bad frame fault arguments, naming them", async () => {
    const tb = await createTestbed(REMOTE);
    expect(() => tb.inject({ kind: "drop-frame", count: 0 })).toThrow(new TestbedError("inject drop-frame: count 0 (want a whole number ≥ 1)"));
    expect(() => tb.inject({ kind: "drop-frame", dir: "sideways" as never })).toThrow(/dir "sideways" \(want "to-target" or "to-host"\)/);
    expect(() => tb.inject({ kind: "delay-frame", delay: -5 })).toThrow(/inject delay-frame: delay -5 ns is negative/);
    expect(() => tb.inject({ kind: "delay-frame", delay: "soon" })).toThrow(/inject delay-frame delay/);
    expect(() => tb.inject({ kind: "corrupt-frame", bit: -1 })).toThrow(/inject corrupt-frame: bit -1/);
    expect(() => tb.inject({ kind: "link-down", link: "eth0" })).toThrow(/unknown link "eth0"/);
    expect(() => tb.inject({ kind: "link-down", for: "-1us" })).toThrow(/inject link-down for/);
  });
});

describe("link and DIF faults", () => {
  it("link-down holds an IO; link-up lets the RC transport resend it; both are link events and fire once", async () => {
    const tb = await createTestbed(REMOTE);
    const vm = tb.vm("db");
    await vm.write(4, page(4));
    const seen: TestbedEvent[] = [];
    tb.on("link", (e) => seen.push(e));
    const down = tb.inject({ kind: "link-down" });
    expect(tb.link().up).toBe(false);
    const h = vm.submit(BlkOp.READ, 4, 1);
    tb.runFor("50us");
    expect(h.result).toBeUndefined();
    expect(tb.link().stats().ab.dropped_link_down).toBeGreaterThan(0);
    const up = tb.inject({ kind: "link-up" }, { at: tb.now + 10_000 });
    const r = await tb.wait(h, { timeout: "1ms" });
    expect(r.status).toBe(0);
    expect(r.data).toEqual(page(4));
    expect([down.fired, up.fired]).toEqual([1, 1]);
    expect(seen.map((e) => (e as LinkEvent).up)).toEqual([false, true]);
    expect(tb.counter("rdma_rc_resends")).toBeGreaterThanOrEqual(1);
  });

  it("corrupt-dif fails only the corrupted block's read; refuses local disks, unprotected targets and LBAs outside the disk", async () => {
    const sc = { name: "mixed", target: { controllers: 1, protection: true },
      vms: [remoteVm("db"), { name: "local", device: "nvme", ram: "8M", disk: { backend: "memory", size: "2M" } }] };
    const tb = await createTestbed(sc);
    const vm = tb.vm("db");
    await vm.write(10, new Uint8Array([...page(1), ...page(2)]));
    const h = tb.inject({ kind: "corrupt-dif", vm: "db", lba: 11, byte: 17 }, { at: tb.now + 1000 });
    expect(h.fired).toBe(0);
    tb.runFor("2us");
    expect(h.fired).toBe(1);
    await expect(vm.read(10, 2)).rejects.toBeInstanceOf(IoError);
    expect(await vm.read(10)).toEqual(page(1));
    expect(tb.nicErrors()).toEqual({ err_nic_dif_guard: 1 });
    expect(() => tb.inject({ kind: "corrupt-dif", vm: "local", lba: 0 })).toThrow(new TestbedError(`inject corrupt-dif: VM local's disk is local to the DPU; only remote disks (transport "rdma": db) sit behind the NIC's DIF check`));
    expect(() => tb.inject({ kind: "corrupt-dif", vm: "db", lba: 4096 })).toThrow(new TestbedError("inject corrupt-dif: LBA 4096 is outside VM db's disk (0..4095)"));
    expect(() => tb.inject({ kind: "corrupt-dif", vm: "db", lba: 0, byte: 4096 })).toThrow(/byte 4096 is outside a 4096-byte block/);
    expect(() => tb.inject({ kind: "corrupt-dif", vm: "nope", lba: 0 })).toThrow(/unknown VM "nope"/);
    const plain = await createTestbed(REMOTE);
    expect(() => plain.inject({ kind: "corrupt-dif", vm: "db", lba: 0 })).toThrow(/the target has no end-to-end protection, .*set "target": \{ "protection": true \}/);
  });

  it("crash-controller: the controller serving the VM's queue crashes and restarts; IO carries on, verified, and \"controller\" events tell its states", async () => {
    const tb = await createTestbed(REMOTE);
    const vm = tb.vm("db");
    const seen: string[] = [];
    tb.on("controller", (e) => seen.push(`${e.controller} ${e.from}→${e.to}`));
    await vm.write(8, page(0x5a));
    const served = tb.controllerStats().findIndex((c) => (c.commands.write ?? 0) > 0);
    const name = String.fromCharCode(65 + served);
    const h = tb.inject({ kind: "crash-controller", controller: name, for: "300us" });
    expect(h.fired).toBe(1);
    for (let i = 0; i < 4; i++) {
      await vm.write(16 + i, page(i + 1));
      expect(await vm.read(16 + i)).toEqual(page(i + 1));
    }
    expect(await vm.read(8)).toEqual(page(0x5a));
    tb.runFor("1ms");
    expect(seen[0]).toBe(`${name} up→crashed`);
    expect(seen.at(-1)).toMatch(new RegExp(`^${name} .*→up$`));
    expect(tb.remote.nic.failovers().takeovers).toBeGreaterThanOrEqual(1);
    expect(() => tb.inject({ kind: "crash-controller", controller: "C" })).toThrow(/controller "C" is not one of the target's 2 \(A to B, or 0 to 1\)/);
    expect(() => tb.inject({ kind: "crash-controller", controller: 0, for: -1 })).toThrow(/for -1 ns is negative/);
  });

  it("\"wqe\" events: every WQE the NIC fetches for a read — the data packet, then the response on the tail fast path — with its controller, QP and CID", async () => {
    const tb = await createTestbed(REMOTE);
    const vm = tb.vm("db");
    await vm.write(3, page(9)); // before anyone listens: the NIC records nothing
    expect(tb.nicCounter("trace_lost")).toBe(0);
    const wqes: WqeEvent[] = [];
    const off = tb.on("wqe", (e) => wqes.push(e));
    expect(await vm.read(3)).toEqual(page(9));
    off();
    expect(wqes.map((e) => e.stage)).toEqual(["single", "response"]); // 4 KiB at MTU 4096: one data packet
    expect(new Set(wqes.map((e) => `${e.controller} ${e.qpn} ${e.cid}`)).size).toBe(1);
    expect(wqes[1]!.index).toBe(wqes[0]!.index + 1);
    expect(wqes.every((e) => e.refused === undefined)).toBe(true);
    await vm.read(3);
    expect(wqes).toHaveLength(2); // unsubscribed: the NIC stopped recording
    expect(() => tb.inject({ kind: "link-up" }, { on: "wqe" })).not.toThrow();
  });
});
