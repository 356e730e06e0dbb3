// The capture of a whole run: `wasm-dpu run --scenario rdma --pcap FILE` (2 VMs → DPU →
// NVMe-oF over RoCEv2, 1% loss, reorder and duplication → storage-side NIC → 2 storage
// controllers) must open in Wireshark with no malformed packet, and Wireshark must recognise
// what crossed the wire as NVMe-oF: the RDMA-CM connections of both associations, the Fabrics
// Connect / Property / Identify commands, and the Read and Write commands on the I/O queues
// with their completions.
import { describe, expect, it, beforeAll } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cli, type CliIo } from "../../host/cli/run.js";
import { tshark, problems } from "./tshark.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wasm-dpu-rdma-"));
const IOS = 1500; // per VM

/** One row of `tshark -T fields` per frame that matches `filter` (all when null), the fields in the order asked. */
function rows(file: string, filter: string | null, ...names: string[]): string[][] {
  return tshark(file, ...(filter ? ["-Y", filter] : []), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f", ...names.flatMap((n) => ["-e", n]))
    .split("\n").filter((l) => l.length > 0).map((l) => l.split("\t"));
}

describe("wasm-dpu run --scenario rdma --pcap: the capture decodes in Wireshark", () => {
  let file: string;
  let result: { jobs: { errors: number; verify_errors?: number; ios?: number }[] } | undefined;
  beforeAll(async () => {
    file = path.join(tmp, "rdma.pcap");
    const out: string[] = [], err: string[] = [];
    const io: CliIo = { out: (s) => out.push(s), err: (s) => err.push(s) };
    const code = await cli(["run", "--scenario", "rdma", "--ios", String(IOS), "--quiet", "--json", "--no-wall", "--pcap", file], io);
    if (code !== 0) throw new Error(`wasm-dpu run exited ${code}: ${err.join("\n")}`);
    result = JSON.parse(out.join("\n"));
  });

  it("the run itself verified every IO", () => {
    expect(result).toBeDefined();
    expect(JSON.stringify(result)).not.toMatch(/"errors":\s*[1-9]/);
  });

  it("finds no malformed packet and no expert error in the whole capture", () => {
    const v = tshark(file, "-V");
    expect(problems(v)).toEqual([]);
    expect((v.match(/^Frame \d+:/gm) ?? []).length).toBeGreaterThan(4 * IOS);
  });

  it("every frame is RoCEv2; the NVMe-oF queues were set up through RDMA-CM", () => {
    const protos = rows(file, null, "frame.protocols").map((r) => r[0]!);
    expect(protos.every((p) => p.startsWith("eth:ethertype:ip:udp:infiniband"))).toBe(true);
    const reqs = rows(file, "infiniband.mad.attributeid == 0x0010", "nvme-rdma.cm.req.qid");
    // Two associations (one per VM): an admin queue (qid 0) and one I/O queue (qid 1) each; a lost REQ is sent again.
    expect(new Set(reqs.map((r) => r[0])).size).toBe(2);
    expect(reqs.filter((r) => r[0] === "0").length).toBeGreaterThanOrEqual(2);
  });

  it("recognises the Fabrics commands of the bring-up and the Read and Write commands with their completions", () => {
    const fab = rows(file, "nvme.fabrics.cmd.fctype", "nvme.fabrics.cmd.fctype").map((r) => Number(r[0]));
    expect(new Set(fab)).toEqual(new Set([0x00, 0x01, 0x04])); // Property Set, Connect, Property Get
    const cmds = rows(file, "nvme.cmd.opc && nvme-rdma.cmd.qid != 0", "nvme.cmd.opc").map((r) => Number(r[0]));
    const reads = cmds.filter((o) => o === 0x02).length, writes = cmds.filter((o) => o === 0x01).length;
    // randrw 50/50: both kinds, every IO at least once (retransmitted capsules may appear twice).
    expect(reads + writes).toBeGreaterThanOrEqual(2 * IOS);
    expect(reads).toBeGreaterThan(IOS / 2);
    expect(writes).toBeGreaterThan(IOS / 2);
    const cqes = rows(file, "nvme.cqe.cid && nvme-rdma.cmd.qid != 0", "nvme.cqe.status").map((r) => Number(r[0]));
    expect(cqes.length).toBeGreaterThanOrEqual(2 * IOS);
    expect(cqes.every((s) => s === 0)).toBe(true);
  });

  it("read data travels as RDMA WRITE to the host and write data as RDMA READ responses or in-capsule data", () => {
    const ops = rows(file, null, "infiniband.bth.opcode").map((r) => Number(r[0]));
    const has = (...o: number[]) => ops.some((x) => o.includes(x));
    expect(has(0x0a, 0x06)).toBe(true); // RDMA WRITE ONLY / FIRST
    expect(has(0x04)).toBe(true); // SEND ONLY: capsules
    expect(has(0x11)).toBe(true); // ACKNOWLEDGE
  });
});
