// Wireshark (tshark) decodes the RoCEv2 frames we write into pcap files: no malformed
// packets or expert errors, the protocol stack recognized, and the header fields it reads
// are the ones that were built.
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createPcapFile } from "../../host/fabric/pcap-file.js";
import { Fabric } from "../../host/fabric/fabric.js";
import { Counter } from "../../assembly/counters.js";
import { card, writeDesc, rxLog, W, type Desc } from "../rdma/setup.js";
import { sampleFrames } from "../rdma/samples.js";
import { replayCli, type ReplayLine } from "../../host/cli/replay.js";
import { representativeFrames, roceFrame, type RoceSpec } from "./roce-frames.js";
import { tshark, problems, packets, fields } from "./tshark.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wasm-dpu-interop-"));

/** Write frames to a nanosecond pcap, 1 µs apart on the virtual clock. */
function capture(name: string, frames: Uint8Array[]): string {
  const file = path.join(tmp, name);
  const w = createPcapFile(file);
  frames.forEach((f, i) => w.record(1_000 * (i + 1), f));
  w.close();
  return file;
}

/** What tshark must read back for a frame built from `s`. */
function expected(s: RoceSpec): Record<string, string> {
  const pad = (4 - ((s.payload?.length ?? 0) % 4)) % 4;
  const hex = (v: number | bigint, w: number) => `0x${v.toString(16).padStart(w, "0")}`;
  const e: Record<string, string> = {
    "infiniband.bth.opcode": String(s.opcode),
    "infiniband.bth.destqp": hex(s.destQp, 6),
    "infiniband.bth.psn": String(s.psn),
    "infiniband.bth.a": s.ackReq ? "1" : "0",
    "infiniband.bth.padcnt": String(pad),
    "infiniband.bth.p_key": "65535",
  };
  if (s.reth) Object.assign(e, { "infiniband.reth.va": hex(s.reth.va, 16), "infiniband.reth.r_key": hex(s.reth.rkey, 8), "infiniband.reth.dmalen": String(s.reth.len) });
  if (s.aeth) Object.assign(e, { "infiniband.aeth.syndrome": String(s.aeth.syndrome), "infiniband.aeth.msn": String(s.aeth.msn) });
  if (s.deth) Object.assign(e, { "infiniband.deth.q_key": hex(s.deth.qkey, 16), "infiniband.deth.srcqp": hex(s.deth.srcQp, 8) });
  if (s.payload?.length) e["data.len"] = String(s.payload.length + pad);
  return e;
}

describe("tshark decodes the wire layer's representative frames (rdmaSampleFrames: CM REQ, capsules, every position, ACK/NAK)", () => {
  let frames: Uint8Array[];
  let file: string;
  beforeAll(async () => {
    frames = await sampleFrames();
    file = capture("samples.pcap", frames);
  });

  it("finds no malformed packet and no expert error", () => {
    const v = tshark(file, "-V");
    expect(problems(v)).toEqual([]);
    expect(v.match(/^Frame \d+:/gm)).toHaveLength(frames.length);
  });

  it("recognizes eth / ip / udp / infiniband, the CM ConnectRequest MAD on QP1, and the BTH fields that were built", () => {
    const ps = packets(file);
    expect(ps).toHaveLength(frames.length);
    ps.forEach((layers, i) => {
      const f = fields(layers);
      const b = frames[i]!.subarray(42); // BTH: after Ethernet (14), IPv4 (20), UDP (8)
      expect(f.get("frame.protocols"), `frame ${i + 1}`).toMatch(/^eth:ethertype:ip:udp:infiniband(:data)?$/);
      expect({ op: f.get("infiniband.bth.opcode"), qp: f.get("infiniband.bth.destqp"), psn: f.get("infiniband.bth.psn"), a: f.get("infiniband.bth.a") }, `frame ${i + 1}`).toEqual({
        op: String(b[0]),
        qp: `0x${((b[5]! << 16) | (b[6]! << 8) | b[7]!).toString(16).padStart(6, "0")}`,
        psn: String((b[9]! << 16) | (b[10]! << 8) | b[11]!),
        a: b[8]! & 0x80 ? "1" : "0",
      });
    });
    const cm = fields(ps[0]!);
    expect([cm.get("infiniband.mad.mgmtclass"), cm.get("infiniband.mad.attributeid")]).toEqual(["0x07", "0x0010"]); // CM class, ConnectRequest
  });
});

describe("tshark decodes RoCEv2 frames built in TypeScript (independent ICRC via zlib.crc32)", () => {
  const specs = representativeFrames();
  let file: string;
  beforeAll(() => { file = capture("representative-ts.pcap", specs.map(roceFrame)); });

  it("finds no malformed packet and no expert error in two-pass verbose output", () => {
    const v = tshark(file, "-V");
    expect(problems(v)).toEqual([]);
    expect(v.match(/^Frame \d+:/gm)).toHaveLength(specs.length);
  });

  it("recognizes Ethernet / IPv4 / UDP / InfiniBand (RRoCE) and reads back every BTH and extension header field", () => {
    const ps = packets(file);
    expect(ps).toHaveLength(specs.length);
    ps.forEach((layers, i) => {
      const f = fields(layers);
      expect(f.get("frame.protocols"), `frame ${i + 1}`).toMatch(/^eth:ethertype:ip:udp:infiniband(:data)?$/);
      expect(f.get("udp.dstport")).toBe("4791");
      const want = expected(specs[i]!);
      const got = Object.fromEntries(Object.keys(want).map((k) => [k, f.get(k)]));
      expect(got, `frame ${i + 1} (opcode 0x${specs[i]!.opcode.toString(16)})`).toEqual(want);
    });
  });

  it("reads the timestamps in nanoseconds", () => {
    const t = tshark(file, "-T", "fields", "-e", "frame.time_epoch").trim().split("\n");
    expect(t.slice(0, 3)).toEqual(["0.000001000", "0.000002000", "0.000003000"]);
  });
});

/** The firmware descriptor (wire.ts TXD_*) for a frame spec. */
function desc(s: RoceSpec): Desc {
  return {
    opcode: s.opcode, dqp: s.destQp, psn: s.psn, ackreq: s.ackReq, payload: s.payload,
    va: s.reth?.va, rkey: s.reth?.rkey, dmaLen: s.reth?.len,
    aeth: s.aeth ? ((s.aeth.syndrome << 24) | s.aeth.msn) >>> 0 : undefined,
    imm: s.imm, iethRkey: s.ieth, qkey: s.deth?.qkey, srcQp: s.deth?.srcQp,
  };
}

describe("tshark decodes frames the firmware built, captured while they crossed the fabric", () => {
  const specs = representativeFrames();
  const MTU = 1024, WRITE_LEN = 4 * MTU + 100; // one RDMA WRITE message: FIRST, 3 MIDDLE, LAST
  let file: string;
  let log: ReturnType<typeof rxLog>;
  beforeAll(async () => {
    const a = await card(), b = await card();
    file = path.join(tmp, "firmware-fabric.pcap");
    const fabric = new Fabric({ seed: 1, capture: createPcapFile(file) });
    fabric.connect({ card: a, port: 0 }, { card: b, port: 0 }, { gbps: 100, latencyNs: 1000 });
    for (const s of specs) expect(a.fw.rdmaTxPacket(writeDesc(a, desc(s))), `opcode 0x${s.opcode.toString(16)}`).not.toBe(0xffffffff);
    const payload = new Uint8Array(WRITE_LEN).map((_, i) => i);
    expect(a.fw.rdmaTxMessage(writeDesc(a, { opcode: W.OpClass.WRITE, dqp: 0x15, psn: 1000, ackreq: true, va: 0x20000n, rkey: 0x77, payload, mtu: MTU }))).toBe(5);
    fabric.step(0);
    fabric.step(1e6);
    fabric.close();
    b.fw.rdmaRxPoll(1024);
    log = rxLog(b, (n) => Counter[n]!);
  });

  it("the receiving card accepts every frame (ICRC good)", () => {
    expect(log).toHaveLength(specs.length + 5);
    expect(log.filter((l) => !l.accepted || !l.icrcOk)).toEqual([]);
  });

  it("finds no malformed packet and no expert error, and reads back the built fields", () => {
    expect(problems(tshark(file, "-V"))).toEqual([]);
    const ps = packets(file);
    expect(ps).toHaveLength(specs.length + 5);
    ps.slice(0, specs.length).forEach((layers, i) => {
      const f = fields(layers);
      expect(f.get("frame.protocols"), `frame ${i + 1}`).toMatch(/^eth:ethertype:ip:udp:infiniband(:data)?$/);
      const want = expected(specs[i]!);
      const got = Object.fromEntries(Object.keys(want).map((k) => [k, f.get(k)]));
      expect(got, `frame ${i + 1} (opcode 0x${specs[i]!.opcode.toString(16)})`).toEqual(want);
    });
    const w = ps.slice(specs.length).map((l) => fields(l));
    expect(w.map((f) => f.get("infiniband.bth.opcode"))).toEqual(["6", "7", "7", "7", "8"]);
    expect(w.map((f) => f.get("infiniband.bth.psn"))).toEqual(["1000", "1001", "1002", "1003", "1004"]);
    expect(w[0]!.get("infiniband.reth.dmalen")).toBe(String(WRITE_LEN));
    expect(w.map((f) => f.get("infiniband.bth.a"))).toEqual(["0", "0", "0", "0", "1"]);
  });
});

describe("wasm-dpu replay and tshark agree on every frame of a capture", () => {
  it("opcode, dest QP, PSN and AckReq match frame by frame; frames tshark decodes as RoCEv2 are accepted with a good ICRC", async () => {
    const frames = [...(await sampleFrames()), ...representativeFrames().map(roceFrame)];
    const file = capture("agree.pcap", frames);
    const out: string[] = [];
    expect(await replayCli([file, "--json"], { out: (l) => out.push(l), err: (l) => { throw new Error(l); } })).toBe(0);
    const ours = out.map((l) => JSON.parse(l) as ReplayLine);
    const theirs = packets(file).map(fields);
    expect(ours).toHaveLength(frames.length);
    expect(theirs).toHaveLength(frames.length);
    ours.forEach((r, i) => {
      const t = theirs[i]!;
      expect(r, `frame ${i + 1}`).toMatchObject({ frame: i + 1, action: "accepted", icrc_ok: true });
      expect([r.opcode, r.dest_qp, r.psn, r.ack_req], `frame ${i + 1}`).toEqual([
        Number(t.get("infiniband.bth.opcode")), Number(t.get("infiniband.bth.destqp")), Number(t.get("infiniband.bth.psn")), t.get("infiniband.bth.a") === "1",
      ]);
    });
  });
});
