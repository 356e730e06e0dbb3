// Wireshark decodes our RDMA-CM exchange and recognises the NVMe-oF capsules that follow on the
// queue it set up: two cards over a Fabric capture REQ / REP / RTU (admin queue, port 4420), then
// a Fabrics Connect command capsule (SEND ONLY, 64-byte SQE, opcode 0x7F, fctype 0x01) and its
// response capsule (SEND ONLY, 16-byte CQE) on the established QPs. `tshark -2 -V` must show the
// CM MADs with the service ID, decode the capsules with the nvme-rdma dissector ("NVMe Fabrics
// RDMA", Connect), and report no malformed packet.
import { describe, expect, it, beforeAll } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createPcapFile } from "../../host/fabric/pcap-file.js";
import { pair, connect, run, conn, conns, CW, HOST, TARGET } from "../rdma/cm-pair.js";
import { writeDesc, W } from "../rdma/setup.js";
import { tshark, problems, packets, fields } from "./tshark.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wasm-dpu-cm-"));

/** Fabrics Connect SQE (NVMe-oF 1.1 §3.3): opcode 7Fh, fctype 01h, keyed SGL to 1 KiB of connect data. */
function connectSqe(cid: number, qid: number, sqsize: number): Uint8Array {
  const s = new Uint8Array(64), dv = new DataView(s.buffer);
  s[0] = 0x7f; // opcode: Fabrics command
  // Byte 1 is reserved in a Fabrics command (NVMe-oF 1.1 figure 9): data is always described by SGL.
  dv.setUint16(2, cid, true);
  s[4] = 0x01; // fctype: Connect
  dv.setBigUint64(24, 0x10000n, true); // SGL keyed data block: address
  dv.setUint32(32, 1024 | (0x34 << 24), true); // length u24 | key byte 0
  dv.setUint32(36, 0x40000012, true); // key bytes 1..3 | identifier 0x40
  dv.setUint16(40, 0, true); // RECFMT
  dv.setUint16(42, qid, true); // QID
  dv.setUint16(44, sqsize, true); // SQSIZE (0's based)
  dv.setUint32(48, 120_000, true); // KATO
  return s;
}

/** Response capsule: CQE with DW0 = controller ID, SQID, CID, status success. */
function connectCqe(cid: number, cntlid: number): Uint8Array {
  const c = new Uint8Array(16), dv = new DataView(c.buffer);
  dv.setUint32(0, cntlid, true);
  dv.setUint16(12, cid, true);
  return c;
}

describe("tshark decodes an RDMA-CM connection and the NVMe-oF capsules on it", () => {
  let file: string;
  let host: ReturnType<typeof conn>, target: ReturnType<typeof conn>;
  beforeAll(async () => {
    file = path.join(tmp, "cm.pcap");
    const w = createPcapFile(file);
    const p = await pair({}, { capture: w });
    p.target.fw.rdmaCmListen(4420);
    const id = connect(p, 0, 32, 31);
    run(p, 200_000, () => p.host.fw.rdmaCmState(id) === CW.CmState.ESTABLISHED && [...conns(p.target).values()].some((c) => c.state === "ESTABLISHED"));
    const h = conn(p.host, id);
    const t = [...conns(p.target).values()].find((c) => c.remoteCommId === h.localCommId)!;
    expect([h.state, t.state]).toEqual(["ESTABLISHED", "ESTABLISHED"]);
    host = h; target = t;
    // Command capsule host → target, then the response capsule target → host, each with the PSNs the CM agreed.
    p.host.fw.rdmaTxPacket(writeDesc(p.host, { opcode: W.Op.RC_SEND_ONLY, seM: W.BTH_SE, dqp: h.remoteQpn, psn: h.localPsn, ackreq: true, payload: connectSqe(1, 0, 31), srcIp: HOST.ip, dstIp: TARGET.ip, srcMac: HOST.mac, dstMac: TARGET.mac }));
    run(p, 10_000);
    p.target.fw.rdmaTxPacket(writeDesc(p.target, { opcode: W.Op.RC_SEND_ONLY, seM: W.BTH_SE, dqp: t.remoteQpn, psn: t.localPsn, ackreq: true, payload: connectCqe(1, 1), srcIp: TARGET.ip, dstIp: HOST.ip, srcMac: TARGET.mac, dstMac: HOST.mac, sport: 0xc000 | t.localQpn }));
    run(p, 10_000);
    w.close();
  });

  it("finds no malformed packet; REQ, REP, RTU, command capsule, response capsule, and the RC engine's acknowledgements", () => {
    const v = tshark(file, "-V");
    expect(problems(v)).toEqual([]);
    // The CM enabled the RC engine on both QPs: each capsule is answered by an ACK / NAK from its receiver.
    const lines = tshark(file).trim().split("\n");
    expect(lines.filter((l) => !/RC Acknowledge/.test(l))).toHaveLength(5);
    expect(lines.filter((l) => /RC Acknowledge/.test(l))).toHaveLength(2);
  });

  it("decodes the CM MADs: ConnectRequest with the NVMe service ID, GIDs, QPN, PSN and NVMe-oF private data; ConnectReply; ReadyToUse", () => {
    const hex = (v: number, w: number) => `0x${v.toString(16).padStart(w, "0")}`; // tshark shows the port as 0x1144 (4420)
    const [req, rep, rtu] = packets(file).map(fields);
    expect([req, rep, rtu].map((f) => [f!.get("infiniband.mad.mgmtclass"), f!.get("infiniband.mad.attributeid")])).toEqual([["0x07", "0x0010"], ["0x07", "0x0013"], ["0x07", "0x0014"]]);
    expect([req, rep, rtu].map((f) => f!.get("infiniband.mad.transactionid"))).toEqual(Array(3).fill(req!.get("infiniband.mad.transactionid")));
    expect({
      sid: req!.get("infiniband.cm.req.serviceid"), proto: req!.get("infiniband.cm.req.serviceid.protocol"), port: req!.get("infiniband.cm.req.serviceid.dport"),
      qpn: req!.get("infiniband.cm.req.localqpn"), psn: req!.get("infiniband.cm.req.startpsn"),
      sip: req!.get("infiniband.cm.req.ip_cm.sip4"), dip: req!.get("infiniband.cm.req.ip_cm.dip4"),
      qid: req!.get("nvme-rdma.cm.req.qid"), hrqsize: req!.get("nvme-rdma.cm.req.hrqsize"), hsqsize: req!.get("nvme-rdma.cm.req.hsqsize"), cntlid: req!.get("nvme-rdma.cm.req.cntlid"),
    }).toEqual({
      sid: "0x0000000001061144", proto: "0x06", port: "0x1144", qpn: hex(host.localQpn, 6), psn: hex(host.localPsn, 6),
      sip: "10.0.0.1", dip: "10.0.0.2", qid: "0", hrqsize: "32", hsqsize: "31", cntlid: "0xffff",
    });
    expect({ qpn: rep!.get("infiniband.cm.rep.localqpn"), psn: rep!.get("infiniband.cm.rep.startpsn"), rcid: rep!.get("infiniband.cm.rep.remotecommid"), crqsize: rep!.get("nvme-rdma.cm.rsp.crqsize") })
      .toEqual({ qpn: hex(target.localQpn, 6), psn: hex(target.localPsn, 6), rcid: hex(host.localCommId, 8), crqsize: "31" });
    expect([rtu!.get("infiniband.cm.rtu.localcommid"), rtu!.get("infiniband.cm.rtu.remotecommid")]).toEqual([hex(host.localCommId, 8), hex(target.localCommId, 8)]);
    const v = tshark(file, "-V", "-Y", "frame.number <= 3");
    for (const m of [/CM ConnectRequest/, /CM ConnectReply/, /CM ReadyToUse/, /IP CM ServiceID/, /NVM Express Fabrics RDMA/]) expect(v).toMatch(m);
  });

  it("recognises the capsules as NVMe-oF over RDMA: the Connect command on the admin queue and its response", () => {
    const summary = tshark(file).trim().split("\n").filter((l) => !/RC Acknowledge/.test(l));
    expect(summary[3]).toMatch(/NVMe Fabrics RDMA .*NVMeOF Connect/);
    expect(summary[4]).toMatch(/NVMe Fabrics RDMA .*NVMeOF CQE for Connect/);
    const [cmd, rsp] = packets(file, "-Y", "nvme-rdma.cmd.qid").map(fields);
    expect(cmd!.get("frame.protocols")).toBe("eth:ethertype:ip:udp:infiniband:nvme-rdma");
    expect({ qid: cmd!.get("nvme-rdma.cmd.qid"), opc: cmd!.get("nvme.fabrics.cmd.opc"), fctype: cmd!.get("nvme.fabrics.cmd.fctype"), cid: cmd!.get("nvme.fabrics.cmd.cid") })
      .toEqual({ qid: "0x0000", opc: "7f", fctype: "0x01", cid: "0x0001" });
    expect(rsp!.get("frame.protocols")).toBe("eth:ethertype:ip:udp:infiniband:nvme-rdma");
    expect(rsp!.get("nvme-rdma.cmd.qid")).toBe("0x0000");
    expect(tshark(file, "-V", "-Y", "nvme-rdma.cmd.qid && frame.len < 100")).toMatch(/Fabric Cmd in: 4/);
  });
});
