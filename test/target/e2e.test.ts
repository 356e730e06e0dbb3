// NVMe-oF end to end: a scripted host card → RoCEv2 fabric → storage-side NIC firmware →
// storage controllers (host/target/) → memory backend, and back. Every byte read is compared
// with what was written; every response is the real capsule the NIC sent.
import { describe, it, expect } from "vitest";
import { host, command, commands, sgl, run, addQueues, DATA } from "./host.js";
import { postSend, postRecv, poll, R as RC } from "../rdma/rc-setup.js";
import { CW } from "../rdma/cm-pair.js";
import { capsule, connect, propertyGet, propertySet, pattern, CC_ENABLE, SUBNQN, HOSTNQN, S, F } from "./nvmf.js";
import * as R from "../../assembly/nvme/regs.js";
import { connectController } from "../../host/nvmeof/initiator.js";
import { TARGET } from "../rdma/cm-pair.js";

type H = Awaited<ReturnType<typeof host>>;
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

/** Fabrics Connect on the admin queue (0), CC.EN, Connect the I/O queues; returns the CNTLID. */
function bringUp(h: H): number {
  const c = command(h, 0, connect(1, 0, 31, F.CNTLID_DYNAMIC));
  expect(c).toMatchObject({ status: 0, cid: 1, sqid: 0 });
  expect(command(h, 0, propertySet(2, R.NVME_REG_CC, CC_ENABLE)).status).toBe(0);
  for (let q = 1; q < h.q.length; q++) expect(command(h, q, connect(3, q, 31, c.dw0))).toMatchObject({ status: 0, sqid: q, dw0: c.dw0 });
  return c.dw0;
}

const io = (opc: number, cid: number, slba: number, nlb: number, g: Parameters<typeof capsule>[0]["sgl"], data?: Uint8Array) =>
  capsule({ opc, cid, nsid: 1, slba: BigInt(slba), cdw12: nlb - 1, sgl: g, data });

describe("NVMe-oF target end to end", () => {
  it("Connect, Property Set / Get, Identify Controller and Namespace over the wire", async () => {
    const h = await host({ queues: 1 });
    const cntlid = bringUp(h);
    expect(command(h, 0, propertyGet(3, R.NVME_REG_CSTS, false)).dw0 & R.NVME_CSTS_RDY).toBe(1);
    const cap = command(h, 0, propertyGet(4, R.NVME_REG_CAP, true));
    expect(cap.dw0 & 0xffff).toBe(63);
    expect(command(h, 0, capsule({ opc: S.ADM_IDENTIFY, cid: 5, cdw10: S.CNS_CONTROLLER, sgl: sgl(h, 4096) })).status).toBe(0);
    const idc = h.ram.subarray(DATA, DATA + 4096), dv = new DataView(idc.buffer, idc.byteOffset, 4096);
    expect(dv.getUint16(S.IDC_CNTLID, true)).toBe(cntlid);
    expect(new TextDecoder().decode(idc.subarray(S.IDC_MN, S.IDC_MN + S.IDC_MN_LEN)).trim()).toBe("wasm-dpu NVMe-oF target");
    expect(dv.getUint32(S.IDC_SGLS, true) & 4).toBe(4);
    expect(command(h, 0, capsule({ opc: S.ADM_IDENTIFY, cid: 6, nsid: 1, cdw10: S.CNS_NAMESPACE, sgl: sgl(h, 4096) })).status).toBe(0);
    expect(dv.getBigUint64(S.IDN_NSZE, true)).toBe(BigInt((4 << 20) / 512));
    // Once the last response is acknowledged nothing is held and no timer runs on the NIC card.
    run(h, () => h.nic.inFlight() === 0 && h.nic.nextDeadline() === Infinity, 10_000);
    expect([h.nic.inFlight(), h.nic.nextDeadline()]).toEqual([0, Infinity]);
  });

  for (const mtu of [1024, 4096]) {
    for (const len of [4096, 65536]) {
      it(`${len / 1024} KiB writes and reads byte-exact at MTU ${mtu}`, async () => {
        const h = await host({ mtu, queues: 2 });
        bringUp(h);
        const data = pattern(len, mtu + len);
        h.ram.set(data, DATA);
        expect(command(h, 1, io(S.IO_WRITE, 10, 64, len / 512, sgl(h, len))).status).toBe(0);
        expect(same(h.disk.subarray(64 * 512, 64 * 512 + len), data)).toBe(true);
        h.ram.fill(0, DATA + 0x40000, DATA + 0x40000 + len);
        expect(command(h, 1, io(S.IO_READ, 11, 64, len / 512, sgl(h, len, 0x40000))).status).toBe(0);
        expect(same(h.ram.subarray(DATA + 0x40000, DATA + 0x40000 + len), data)).toBe(true);
        expect(h.p.target.errors()).toEqual({});
      });
    }
  }

  it("in-capsule write (4 KiB in the SEND), then read back", async () => {
    const h = await host({ mtu: 1024 });
    bringUp(h);
    const data = pattern(4096, 1);
    expect(command(h, 1, io(S.IO_WRITE, 20, 8, 8, { inline: true, len: 4096 }, data)).status).toBe(0);
    expect(same(h.disk.subarray(8 * 512, 8 * 512 + 4096), data)).toBe(true);
    expect(command(h, 1, io(S.IO_READ, 21, 8, 8, sgl(h, 4096))).status).toBe(0);
    expect(same(h.ram.subarray(DATA, DATA + 4096), data)).toBe(true);
  });

  it("two controllers serve two I/O queues: admin and queue 1 on controller 0, queue 2 on controller 1", async () => {
    const h = await host({ queues: 3, controllers: 2 });
    bringUp(h);
    expect(h.nic.bindings().map((b) => [b.qid, b.controller])).toEqual([[0, 0], [1, 0], [2, 1]]);
    const a = pattern(8192, 2), b = pattern(8192, 3);
    h.ram.set(a, DATA);
    h.ram.set(b, DATA + 8192);
    const w = commands(h, [[1, io(S.IO_WRITE, 30, 0, 16, sgl(h, 8192))], [2, io(S.IO_WRITE, 31, 100, 16, sgl(h, 8192, 8192))]]);
    expect(w.map((r) => [r.cid, r.status, r.sqid])).toEqual([[30, 0, 1], [31, 0, 2]]);
    const r = commands(h, [[2, io(S.IO_READ, 32, 0, 16, sgl(h, 8192, 0x10000))], [1, io(S.IO_READ, 33, 100, 16, sgl(h, 8192, 0x20000))]]);
    expect(r.map((x) => x.status)).toEqual([0, 0]);
    expect(same(h.ram.subarray(DATA + 0x10000, DATA + 0x10000 + 8192), a)).toBe(true);
    expect(same(h.ram.subarray(DATA + 0x20000, DATA + 0x20000 + 8192), b)).toBe(true);
    const [c0, c1] = h.nic.stats().controllers;
    expect(c0!.commands).toMatchObject({ write: 1, read: 1, connect: 2 });
    expect(c1!.commands).toMatchObject({ write: 1, read: 1, connect: 1 });
  });

  for (const fastPath of [true, false]) {
    it(`protection on (fast path ${fastPath ? "on" : "off"}): reads pass the NIC's DIF check; corrupt(lba) → end-to-end guard check error`, async () => {
      const h = await host({ mtu: 4096, protection: true, fastPath });
      bringUp(h);
      const data = pattern(16384, 4);
      h.ram.set(data, DATA);
      expect(command(h, 1, io(S.IO_WRITE, 40, 200, 32, sgl(h, 16384))).status).toBe(0);
      expect(command(h, 1, io(S.IO_READ, 41, 200, 32, sgl(h, 16384, 0x8000))).status).toBe(0);
      expect(same(h.ram.subarray(DATA + 0x8000, DATA + 0x8000 + 16384), data)).toBe(true);
      const checked = h.p.target.counters().nic_dif_checked!;
      expect(checked).toBeGreaterThanOrEqual(4);
      h.nic.corrupt(210, 17);
      const bad = command(h, 1, io(S.IO_READ, 42, 200, 32, sgl(h, 16384, 0x8000)));
      expect(bad).toMatchObject({ cid: 42, sct: 2, sc: 0x82, dnr: true });
      expect(h.p.target.counters().err_nic_dif_guard).toBe(1);
      run(h, () => h.nic.stats().controllers[0]!.errors.dif_guard === 1, 1000);
      expect(h.nic.stats().controllers[0]!.errors.dif_guard).toBe(1);
      // the other blocks still read fine
      expect(command(h, 1, io(S.IO_READ, 43, 200, 8, sgl(h, 4096))).status).toBe(0);
    });
  }

  it("malformed capsules get their error statuses through the NIC", async () => {
    const h = await host({ mtu: 1024 });
    bringUp(h);
    const cases: [Uint8Array, number, number][] = [
      [capsule({ opc: 0x7e, cid: 50, nsid: 1 }), 0, 0x01],
      [io(S.IO_READ, 51, (4 << 20) / 512 - 1, 2, sgl(h, 1024)), 0, 0x80],
      [io(S.IO_READ, 52, 0, 1, { raw: 0x00, len: 512 }), 0, 0x11],
      [io(S.IO_READ, 53, 0, 2, sgl(h, 512)), 0, 0x0f],
      [io(S.IO_WRITE, 54, 0, 1, { inline: true, off: 1024, len: 512 }, new Uint8Array(512)), 0, 0x16],
      [capsule({ opc: F.OPC_FABRICS, fctype: F.FCTYPE_PROPERTY_GET, cid: 55 }), 0, 0x01],
    ];
    const got = cases.map(([c]) => command(h, 1, c));
    expect(got.map((r) => [r.cid, r.sct, r.sc, r.dnr])).toEqual(cases.map(([c, sct, sc]) => [c[2]! | (c[3]! << 8), sct, sc, true]));
    expect(command(h, 0, connect(60, 0, 31, F.CNTLID_DYNAMIC))).toMatchObject({ sct: 1, sc: 0x81 }); // the admin queue is connected already
  });

  it("a disconnected I/O queue is unbound and leaves its association; the QID connects again on a new QP", async () => {
    const h = await host({ queues: 2 });
    const cntlid = bringUp(h);
    expect(h.p.host.fw.rdmaCmDisconnect(h.ids[1]!)).toBe(0);
    run(h, () => h.nic.bindings().length === 1, 20_000);
    expect(h.nic.bindings().map((b) => b.qid)).toEqual([0]);
    expect([...h.nic.subsystem.assocs.get(cntlid)!.ioQueues]).toEqual([]);
    run(h, () => h.p.host.fw.rdmaCmState(h.ids[1]!) === CW.CmState.IDLE, 200_000); // the host's TIMEWAIT ends
    addQueues(h, [1]);
    expect(command(h, 2, connect(7, 1, 31, cntlid))).toMatchObject({ status: 0, sqid: 1 });
    const data = pattern(4096, 12);
    h.ram.set(data, DATA);
    expect(command(h, 2, io(S.IO_WRITE, 8, 0, 8, sgl(h, 4096))).status).toBe(0);
    expect(same(h.disk.subarray(0, 4096), data)).toBe(true);
  });

  it("a read into memory the host never registered: the RDMA WRITE fails, the controller frees the command and counts it", async () => {
    const h = await host({ queues: 2 });
    bringUp(h);
    const s = h.q[1]!;
    h.ram.set(io(S.IO_READ, 9, 0, 8, { ...sgl(h, 4096), key: h.key ^ 0x5a5a00 }), 0);
    expect(postRecv(s, [{ wrid: 900, off: 0x10000, len: 64 }])).toBe(1);
    expect(postSend(s, [{ op: RC.WrOp.SEND, wrid: 901, off: 0, len: 64 }])).toBe(1);
    const c0 = () => h.nic.stats().controllers[0]!;
    run(h, () => c0().commands.read === 1 && c0().inFlight === 0, 200_000);
    poll(s);
    expect(c0()).toMatchObject({ inFlight: 0, stageInUse: 0 });
    const e = c0().errors;
    expect(h.p.host.errors().err_rdma_bad_rkey).toBe(1); // the host refused the first WRITE packet
    expect(h.p.target.errors().err_rdma_remote_nak).toBe(1); // its NAK put the target's QP in error
    expect(e).toMatchObject({ data_failed: 4, response_failed: 1 }); // 4 packets at MTU 1024, then the response flushed
  });

  it("StorageNic checks its configuration: controller count, block size, listen before rdmaCmInit", async () => {
    const { Card } = await import("../../host/card.js");
    const { MemoryBackend } = await import("../../host/backends/memory.js");
    const { StorageNic } = await import("../../host/target/nic.js");
    const card = await Card.create({ guests: [], disks: [] });
    const b = new MemoryBackend(new Uint8Array(1 << 20), 512);
    expect(() => new StorageNic(card, b, { controllers: 9 })).toThrow(/controllers/);
    expect(() => new StorageNic(card, b, { blockSize: 4096 })).toThrow(/block size/);
    const nic = new StorageNic(card, [b, new MemoryBackend(new Uint8Array(1 << 20), 512)], { controllers: 8 });
    expect(nic.subsystem.namespaces.map((n) => n.nsid)).toEqual([1, 2]);
    expect(nic.stageKeys.length).toBe(8);
    expect(() => nic.listen()).toThrow(/rdmaCmInit/);
  });

  it("the DPU's NVMe-oF initiator (host/nvmeof/initiator.ts) brings up a controller on this target", async () => {
    const h = await host({ queues: 0 });
    const c = connectController({
      card: h.p.host, target: { ip: TARGET.ip, mac: TARGET.mac, subnqn: SUBNQN }, hostnqn: HOSTNQN, ioQueues: 2,
      step: () => {
        // The DPU's poll() drives its fabric queues (and the RDMA round) once they exist; before, the CM runs on rdmaPoll.
        h.p.now += 1000;
        h.p.fabric.step(h.p.now);
        h.p.host.now = h.p.now;
        h.p.host.poll();
        if (h.p.host.fw.nvmfQueueState(0) === F.NvmfQueueState.IDLE) h.p.host.fw.rdmaPoll(1024, h.p.now);
        h.nic.step(h.p.now);
      },
    });
    expect(c.model).toBe("wasm-dpu NVMe-oF target");
    expect(c.ns).toMatchObject({ nsid: 1, blocks: (4 << 20) / 512, blockSize: 512 });
    expect(c.ioQueues.length).toBe(2);
    expect(h.nic.bindings().length).toBe(3);
  });
});
