// `wasm-dpu replay FILE.pcap [--json]`: any capture into the storage-side NIC's receive
// path, one line per frame with what the firmware did; clear errors and exit status 2 for
// what is not an Ethernet pcap.
import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { replayCli, type ReplayLine } from "../../host/cli/replay.js";
import { createPcapFile } from "../../host/fabric/pcap-file.js";
import { PCAP_MAGIC_US } from "../../host/fabric/pcap.js";
import * as M from "../../assembly/memmap.js";
import { roceFrame, representativeFrames } from "../interop/roce-frames.js";

const root = path.resolve(__dirname, "../..");
const cliJs = path.join(root, "dist/cli.js");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wasm-dpu-replay-"));

function newest(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(".ts")) t = Math.max(t, fs.statSync(path.join(e.parentPath, e.name)).mtimeMs);
  }
  return t;
}

beforeAll(() => {
  // `npm test` bundles first; a bare `vitest run` may find no bundle, or an old one.
  const built = fs.existsSync(cliJs) ? fs.statSync(cliJs).mtimeMs : 0;
  if (built < Math.max(newest(path.join(root, "host")), newest(path.join(root, "assembly")))) {
    execFileSync(process.execPath, ["scripts/bundle.mjs"], { cwd: root, stdio: "inherit" });
  }
}, 60_000);

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [cliJs, ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function inProcess(...args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await replayCli(args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out, err };
}

function capture(name: string, frames: Uint8Array[], opts?: { snaplen?: number }): string {
  const file = path.join(tmp, name);
  const w = createPcapFile(file, opts);
  frames.forEach((f, i) => w.record(1000 * (i + 1), f));
  w.close();
  return file;
}

/** A classic pcap header with the given magic and link type, and no records. */
function header(magic: number, linkType: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(magic, 0);
  b.writeUInt16LE(2, 4); b.writeUInt16LE(4, 6);
  b.writeUInt32LE(65535, 16);
  b.writeUInt32LE(linkType, 20);
  return b;
}

describe("wasm-dpu replay: errors", () => {
  it.each([
    ["a missing file", () => path.join(tmp, "nope.pcap"), /^wasm-dpu replay: cannot open .*nope\.pcap: no such file\n$/],
    ["a pcapng file", () => {
      const p = path.join(tmp, "x.pcapng");
      // Section Header Block: type, length 28, byte-order magic, version 1.0, section length -1, length.
      const b = Buffer.alloc(28);
      b.writeUInt32LE(0x0a0d0d0a, 0); b.writeUInt32LE(28, 4); b.writeUInt32LE(0x1a2b3c4d, 8);
      b.writeUInt16LE(1, 12); b.writeBigInt64LE(-1n, 16); b.writeUInt32LE(28, 24);
      fs.writeFileSync(p, b);
      return p;
    }, /: this is a pcapng file; only classic pcap is read \(convert it: editcap -F pcap IN\.pcapng OUT\.pcap\)\n$/],
    ["a Linux cooked capture", () => {
      const p = path.join(tmp, "sll.pcap");
      fs.writeFileSync(p, header(PCAP_MAGIC_US, 113));
      return p;
    }, /: link type 113 \(LINUX_SLL\) is not Ethernet; replay reads LINKTYPE_ETHERNET \(1\) captures\n$/],
    ["a file that is no capture", () => {
      const p = path.join(tmp, "notes.txt");
      fs.writeFileSync(p, "hello, this is text\n");
      return p;
    }, /: not a pcap file \(magic 0x68656c6c\)\n$/],
  ])("%s: one line on stderr, exit 2", async (_what, make, msg) => {
    const r = await inProcess(make());
    expect(r.code).toBe(2);
    expect(r.out).toEqual([]);
    expect(r.err).toHaveLength(1);
    expect(r.err[0] + "\n").toMatch(msg);
  });

  it("gives the same through the wasm-dpu command", () => {
    expect(cli("replay", path.join(tmp, "nope.pcap"))).toMatchObject({ code: 2, out: "", err: expect.stringMatching(/cannot open .*: no such file\n$/) });
  });

  it("rejects a missing file argument and a bad --batch with usage errors", async () => {
    expect(cli("replay")).toMatchObject({ code: 2, err: "wasm-dpu: replay: missing FILE.pcap (see wasm-dpu replay --help)\n" });
    expect((await inProcess("x.pcap", "--batch", "0")).err[0]).toMatch(/--batch: "0" is not a whole number in 1\.\.1024/);
    const h = await inProcess("--help");
    expect(h.code).toBe(0);
    expect(h.out[0]).toMatch(/^usage: wasm-dpu replay FILE\.pcap \[--json\]/);
  });
});

describe("wasm-dpu replay: what the firmware did with each frame", () => {
  it("prints one JSON line per frame: opcode, packet type, dest QP, PSN, ICRC, accepted or dropped with the reason", async () => {
    const specs = representativeFrames().slice(0, 4); // SEND ONLY, FIRST, MIDDLE, LAST
    const good = specs.map(roceFrame);
    const badIcrc = roceFrame({ opcode: 0x0a, destQp: 0x12, psn: 9, reth: { va: 0n, rkey: 1, len: 8 }, payload: new Uint8Array(8) });
    badIcrc[badIcrc.length - 1]! ^= 0x80;
    const arp = new Uint8Array(60); // an ARP request: not RoCEv2
    arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    const tooLong = new Uint8Array(M.NET_FRAME_MAX + 100);
    const file = capture("mixed.pcap", [...good, badIcrc, arp, tooLong]);
    const r = cli("replay", file, "--json");
    expect(r.code).toBe(0);
    expect(r.err).toBe("");
    const lines = r.out.trim().split("\n").map((l) => JSON.parse(l) as ReplayLine);
    expect(lines.map((l) => l.frame)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(lines.slice(0, 4).map((l) => [l.opcode_name, l.packet, l.dest_qp, l.psn, l.icrc_ok, l.action])).toEqual([
      ["RC_SEND_ONLY", "only", 0x11, 100, true, "accepted"],
      ["RC_SEND_FIRST", "first", 0x11, 101, true, "accepted"],
      ["RC_SEND_MIDDLE", "middle", 0x11, 102, true, "accepted"],
      ["RC_SEND_LAST", "last", 0x11, 103, true, "accepted"],
    ]);
    expect(lines[0]).toMatchObject({ opcode: 4, class: "send", payload_len: 64 });
    expect(lines[4]).toMatchObject({ opcode: 0x0a, opcode_name: "RC_WRITE_ONLY", dest_qp: 0x12, psn: 9, icrc_ok: false, action: "dropped", reason: "err_rdma_bad_icrc" });
    expect(lines[5]).toMatchObject({ opcode: null, dest_qp: null, psn: null, icrc_ok: null, action: "dropped", reason: "err_rdma_bad_ethertype" });
    expect(lines[6]).toMatchObject({ action: "dropped", reason: "err_rdma_oversized" });
    // Text mode: the same frames, and a summary by reason.
    const t = await inProcess(file);
    expect(t.code).toBe(0);
    const tl = t.out;
    expect(tl).toHaveLength(8);
    expect(tl[0]).toMatch(/^\s+1\s+RC_SEND_ONLY\s+only\s+qp 0x000011\s+psn 100\s+icrc ok\s+accepted$/);
    expect(tl[4]).toMatch(/icrc BAD\s+dropped: err_rdma_bad_icrc$/);
    expect(tl[7]).toBe("replayed 7 frames: 4 accepted, 3 dropped (err_rdma_bad_ethertype 1, err_rdma_bad_icrc 1, err_rdma_oversized 1)");
  });

  it("keeps frame numbers across batches, and marks frames the capture cut short", async () => {
    const frames = Array.from({ length: 700 }, (_, i) => roceFrame({ opcode: 0x04, destQp: 3, psn: i, payload: new Uint8Array(100 + (i % 50)) }));
    const file = capture("many.pcap", frames);
    const r = await inProcess(file, "--json", "--batch", "64");
    expect(r.code).toBe(0);
    const lines = r.out.map((l) => JSON.parse(l) as ReplayLine);
    expect(lines.map((l) => l.psn)).toEqual([...Array(700).keys()]);
    expect(lines.map((l) => l.frame)).toEqual(Array.from({ length: 700 }, (_, i) => i + 1));
    expect(lines.every((l) => l.action === "accepted")).toBe(true);
    // Snapped at 64 bytes: the firmware sees a frame shorter than its IP length says.
    const cut = await inProcess(capture("snapped.pcap", frames.slice(0, 2), { snaplen: 64 }), "--json");
    expect(cut.out.map((l) => JSON.parse(l))).toMatchObject([
      { frame: 1, action: "dropped", reason: "err_rdma_bad_ip_length", snapped: true },
      { frame: 2, action: "dropped", reason: "err_rdma_bad_ip_length", snapped: true },
    ]);
  });

  it("prints the frames before a truncation, then says where the capture ends, exit 1", () => {
    const file = capture("cut.pcap", representativeFrames().slice(0, 3).map(roceFrame));
    const b = fs.readFileSync(file);
    fs.writeFileSync(file, b.subarray(0, b.length - 10));
    const r = cli("replay", file, "--json");
    expect(r.code).toBe(1);
    expect(r.out.trim().split("\n").map((l) => JSON.parse(l).frame)).toEqual([1, 2]);
    expect(r.err).toMatch(/cut\.pcap: capture is truncated: it ends inside frame 3\n$/);
  });
});
