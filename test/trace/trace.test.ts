// The trace: every event on the virtual clock, filterable, as JSON lines and as Chrome
// trace format; the same scenario gives the same trace.
import { describe, it, expect } from "vitest";
import { createTestbed, Tracer, frameSummary, type TestbedEvent } from "../../host/index.js";
import { BlkOp } from "../../host/guest/driver.js";
import { SMALL } from "../api/small.js";

async function traced() {
  const tb = await createTestbed(SMALL, { trace: true });
  await tb.vm("blk").write(3, new Uint8Array(1024).fill(1));
  await tb.vm("nvme").write(3, new Uint8Array(4096).fill(2));
  await tb.wait([tb.vm("blk").submit(BlkOp.READ, 3, 2), tb.vm("nvme").submit(BlkOp.READ, 3, 1)]);
  return tb;
}

describe("trace", () => {
  it("records submits, doorbells, DMA, interrupts and completions in time order", async () => {
    const tb = await traced();
    const evs = tb.trace.events();
    const kinds = new Set(evs.map((e) => e.kind));
    expect([...kinds].sort()).toEqual(["completion", "dma", "doorbell", "irq", "submit"]);
    for (let i = 1; i < evs.length; i++) expect(evs[i]!.seq).toBeGreaterThan(evs[i - 1]!.seq);
    expect(evs.filter((e) => e.kind === "completion")).toHaveLength(4);
    // polls are left out unless asked for
    expect(kinds.has("poll")).toBe(false);
  });

  it("filters by kind, VM and time window", async () => {
    const tb = await traced();
    const nvme = tb.trace.events({ vm: "nvme", kinds: ["completion"] });
    expect(nvme.map((e) => (e as TestbedEvent & { op: string }).op)).toEqual(["write", "read"]);
    const first = tb.trace.events({ to: nvme[0]!.t + 1 });
    expect(first.every((e) => e.t <= nvme[0]!.t)).toBe(true);
    expect(tb.trace.events({ from: 1e12 })).toEqual([]);
    expect(tb.trace.events({ where: (e) => e.kind === "dma" && e.len === 1024 })).toHaveLength(2);
  });

  it("exports JSON lines: one parseable object per event", async () => {
    const tb = await traced();
    const lines = tb.trace.toJsonLines().trimEnd().split("\n");
    expect(lines).toHaveLength(tb.trace.events().length);
    const objs = lines.map((l) => JSON.parse(l));
    expect(objs[0]).toMatchObject({ t: 0, kind: "submit", vm: "blk", op: "write", lba: 3, blocks: 2, source: "api" });
  });

  it("exports Chrome trace format: IOs as complete events on their VM's thread, the rest as instants", async () => {
    const tb = await traced();
    const ct = tb.trace.toChromeTrace();
    const evs = ct.traceEvents as { ph: string; name: string; tid: number; ts: number; dur?: number; args: Record<string, unknown> }[];
    const ios = evs.filter((e) => e.ph === "X");
    expect(ios.map((e) => [e.name, e.tid])).toEqual([["write 3+2", 1], ["write 3+1", 2], ["read 3+2", 1], ["read 3+1", 2]]);
    expect(ios.every((e) => e.dur! > 0)).toBe(true);
    expect(evs.filter((e) => e.ph === "M" && e.name === "thread_name").map((e) => e.args.name).sort()).toEqual(["vm blk", "vm nvme"]);
    expect(evs.some((e) => e.ph === "i" && e.name.startsWith("doorbell"))).toBe(true);
    expect(() => JSON.parse(JSON.stringify(ct))).not.toThrow();
  });

  it("is deterministic: the same scenario and IO give the same JSON lines", async () => {
    const a = (await traced()).trace.toJsonLines();
    const b = (await traced()).trace.toJsonLines();
    expect(a).toBe(b);
  });

  it("records only the kinds asked for, up to a limit", async () => {
    const tb = await createTestbed(SMALL);
    tb.trace.start({ kinds: ["completion", "poll"], limit: 3 });
    await tb.vm("blk").read(0);
    await tb.vm("blk").read(0);
    expect(tb.trace.events().map((e) => e.kind)).toEqual(["poll", "completion", "poll"]);
    expect(tb.trace.dropped).toBeGreaterThan(0);
    tb.trace.stop();
    expect(tb.trace.events()).toEqual([]);
    expect(new Tracer().wants("dma")).toBe(true);
  });
});

describe("frame summaries", () => {
  it("decode the BTH of a RoCEv2 frame, and only length and direction of anything else", () => {
    // Ethernet II / IPv4 / UDP 4791 / BTH: RDMA WRITE ONLY (0x0a) to QP 0x123456, AckReq, PSN 0xabcdef.
    const f = new Uint8Array(14 + 20 + 8 + 12 + 16 + 4);
    f.set([0x08, 0x00], 12);
    f[14] = 0x45;
    f[14 + 9] = 17;
    f.set([0x12, 0xb7], 14 + 20 + 2);
    f.set([0x0a, 0, 0xff, 0xff, 0, 0x12, 0x34, 0x56, 0x80, 0xab, 0xcd, 0xef], 42);
    expect(frameSummary(f, "to-host")).toEqual({ direction: "to-host", length: f.length, opcode: 0x0a, op: "RC_WRITE_ONLY", destQp: 0x123456, psn: 0xabcdef, ackReq: true });
    f[42] = 0x70; // no such opcode: its number stays
    expect(frameSummary(f, "to-host").op).toBe("0x70");
    f.set([0x12, 0xb8], 14 + 20 + 2); // UDP port 4792: not RoCEv2
    expect(frameSummary(f, "to-target")).toEqual({ direction: "to-target", length: f.length });
    expect(frameSummary(f.subarray(0, 40), "to-target")).toEqual({ direction: "to-target", length: 40 });
  });
});
