// host/nvmeof/initiator.ts against the scripted target: the bring-up sequence an NVMe-oF host
// runs (Connect admin with CNTLID FFFFh, Property Set CC.EN, Property Get CSTS, Identify
// Controller and Namespace, Connect each I/O queue with the controller ID it was given), and
// errors that say which step failed, where, and with which status.
import { describe, it, expect } from "vitest";
import { world, bringUp, vio, SUBNQN, HOSTNQN, F, S, BlkOp } from "./target.js";
import * as CW from "../../assembly/rdma/cm-wire.js";
import { connectController, disconnectController, NvmfError } from "../../host/nvmeof/initiator.js";
import { TARGET } from "../rdma/cm-pair.js";
import * as REG from "../../assembly/nvme/regs.js";

describe("NVMe-oF initiator bring-up", () => {
  it("connects the admin queue, enables the controller, identifies it and its namespace, connects the I/O queues", async () => {
    const w = await world({ blockSize: 4096, blocks: 1024 });
    w.target.mqes = 7; // the I/O queues get 8 entries, not the 16 asked for
    const ctrl = bringUp(w, { ioQueues: 2, depth: 16 });
    expect(ctrl).toEqual({
      cntlid: 0x21, adminQueue: 0, ioQueues: [1, 2], model: "scripted target", ns: { nsid: 1, blocks: 1024, blockSize: 4096 },
      ioDepth: 8, maxTransfer: 128 * 1024, cmIds: ctrl.cmIds,
    });
    expect(ctrl.cmIds.map((id) => w.host.fw.rdmaCmState(id))).toEqual([CW.CmState.ESTABLISHED, CW.CmState.ESTABLISHED, CW.CmState.ESTABLISHED]);
    const seen = w.target.capsules.map((c) => {
      const dv = new DataView(c.bytes.buffer);
      if (c.opc !== F.OPC_FABRICS) return `q${c.qid} identify cns ${dv.getUint32(S.SQE_CDW10, true)} nsid ${c.nsid}`;
      const t = dv.getUint8(F.FAB_FCTYPE);
      if (t === F.FCTYPE_CONNECT) {
        const d = new DataView(c.bytes.buffer, S.SQE_SIZE);
        const host = new TextDecoder().decode(c.bytes.subarray(S.SQE_SIZE + F.CD_HOSTNQN, S.SQE_SIZE + F.CD_HOSTNQN + HOSTNQN.length));
        return `q${c.qid} connect qid ${dv.getUint16(F.CONN_QID, true)} sqsize ${dv.getUint16(F.CONN_SQSIZE, true)} cntlid ${d.getUint16(F.CD_CNTLID, true).toString(16)} ${host}`;
      }
      const size = dv.getUint8(F.PROP_ATTRIB) === F.PROP_SIZE_8 ? 8 : 4;
      return `q${c.qid} ${t === F.FCTYPE_PROPERTY_SET ? "set" : "get"} 0x${dv.getUint32(F.PROP_OFFSET, true).toString(16)}/${size}`;
    });
    expect(seen).toEqual([
      `q0 connect qid 0 sqsize 15 cntlid ffff ${HOSTNQN}`,
      "q0 get 0x0/8",
      "q0 set 0x14/4",
      "q0 get 0x1c/4",
      "q0 identify cns 1 nsid 0",
      "q0 identify cns 0 nsid 1",
      `q1 connect qid 1 sqsize 7 cntlid 21 ${HOSTNQN}`,
      `q2 connect qid 2 sqsize 7 cntlid 21 ${HOSTNQN}`,
    ]);
    expect(w.target.cc & REG.NVME_CC_EN).toBe(1);
    expect([w.host.fw.nvmfQueueState(0), w.host.fw.nvmfQueueState(1), w.host.fw.nvmfQueueState(2)]).toEqual([F.NvmfQueueState.LIVE, F.NvmfQueueState.LIVE, F.NvmfQueueState.LIVE]);
    expect(w.host.errors()).toEqual({});
  });

  it("a Connect the target refuses is an NvmfError naming the target, the queue and the status", async () => {
    const w = await world();
    w.target.connectStatus = F.S_CONNECT_INVALID_PARAMETERS;
    const run = () => connectController({ card: w.host, target: { ip: TARGET.ip, mac: TARGET.mac, subnqn: SUBNQN }, hostnqn: HOSTNQN, step: w.step });
    expect(run).toThrow(NvmfError);
    expect(run).toThrow("NVMe-oF connect to 10.0.0.2:4420 qid 0: status 0x182 (Connect Invalid Parameters)");
  });

  it("a wrong subsystem NQN is refused by the target; a failing Identify names its step", async () => {
    const w = await world();
    expect(() => connectController({ card: w.host, target: { ip: TARGET.ip, mac: TARGET.mac, subnqn: "nqn.2026-12.io.example:nope" }, hostnqn: HOSTNQN, step: w.step }))
      .toThrow("NVMe-oF connect to 10.0.0.2:4420 qid 0: status 0x182 (Connect Invalid Parameters)");
    const v = await world();
    v.target.hook = (c) => (c.opc === S.ADM_IDENTIFY ? { status: S.S_INVALID_FIELD } : undefined);
    expect(() => bringUp(v)).toThrow("NVMe-oF 10.0.0.2:4420: Identify CNS 1: status 0x2 (Invalid Field in Command)");
  });

  it("no target listening: the RDMA-CM connect is rejected and says so", async () => {
    const w = await world();
    w.tcard.fw.rdmaCmRelease(0); // the listener
    expect(() => bringUp(w)).toThrow(/NVMe-oF connect to 10\.0\.0\.2:4420 qid 0: RDMA-CM (REJ|gave up)/);
  });

  it("disconnect: shutdown through CC.SHN, queues torn down, RDMA-CM connections released; later I/O fails cleanly", async () => {
    const w = await world();
    const o = { card: w.host, target: { ip: TARGET.ip, mac: TARGET.mac, subnqn: SUBNQN }, hostnqn: HOSTNQN, step: w.step };
    const ctrl = bringUp(w, o);
    const buf = w.host.guests[0]!.alloc(4096);
    expect(vio(w, BlkOp.READ, 0, 8, buf)).toBe(0);
    disconnectController(o, ctrl);
    expect((w.target.cc >>> REG.NVME_CC_SHN_SHIFT) & 3).toBe(1); // normal shutdown asked for
    expect([0, 1].map((q) => w.host.fw.nvmfQueueState(q))).toEqual([F.NvmfQueueState.IDLE, F.NvmfQueueState.IDLE]);
    for (let i = 0; i < 200; i++) w.step(); // DREQ / DREP (the step drives the CM once no fabric queue is left)
    expect(ctrl.cmIds.map((id) => w.host.fw.rdmaCmState(id)).every((s) => s === CW.CmState.TIMEWAIT || s === CW.CmState.IDLE)).toBe(true);
    expect(vio(w, BlkOp.READ, 0, 8, buf)).toBe(1); // IOERR: the disk has no live queue
    expect(w.host.errors()).toEqual({ err_nvmf_queue_down: 1 });
  });
});
