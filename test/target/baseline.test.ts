// The reconnecting baseline (StorageNic mode "reconnect") against the DPU's NVMe-oF host and its
// NvmfReconnector: losing controller A's link tears down the connections bound to it (DREQ,
// target QP in ERR); the host reconnects, the new connections are bound to B (the live one),
// the held requests are resubmitted and every IO completes once, verified. Then A comes back.
import { describe, it, expect } from "vitest";
import { Card } from "../../host/card.js";
import { Fabric } from "../../host/fabric/fabric.js";
import { VirtioBlkPci } from "../../host/pcie/virtio-pci.js";
import { VirtioBlkDriver } from "../../host/guest/virtio-blk.js";
import { BlkOp } from "../../host/guest/driver.js";
import { MemoryBackend } from "../../host/backends/memory.js";
import { StorageNic } from "../../host/target/nic.js";
import { DEFAULT_SUBNQN } from "../../host/target/subsystem.js";
import { connectController, registerGuest, attachDisk, ipWire, macHi, macLo } from "../../host/nvmeof/initiator.js";
import { NvmfReconnector } from "../../host/nvmeof/reconnect.js";
import * as F from "../../assembly/nvmeof/defs.js";
import { pattern } from "./nvmf.js";

const HOST = { ip: [10, 0, 0, 1], mac: [2, 0, 0, 0, 0, 1] };
const NIC = { ip: [10, 0, 0, 2], mac: [2, 0, 0, 0, 0, 2] };
const BS = 512, BLOCKS = 8192, RAM = 8 << 20;

async function setup() {
  const host = await Card.create({ guests: [{ ramBytes: RAM }], disks: [{ kind: "nvmeof", blockSize: BS, blocks: BLOCKS }] });
  const nicCard = await Card.create({ guests: [], disks: [] });
  const backend = new MemoryBackend(new Uint8Array(BS * BLOCKS), BS);
  const nic = new StorageNic(nicCard, backend, { controllers: 2, mode: "reconnect" });
  const fabric = new Fabric({ seed: 5 });
  fabric.connect({ card: host, port: 0 }, { card: nicCard, port: 0 }, { gbps: 100, latencyNs: 2000 });
  for (const [c, a] of [[host, HOST], [nicCard, NIC]] as const) expect(c.fw.rdmaCmInit(ipWire(a.ip), macHi(a.mac), macLo(a.mac))).toBe(0);
  nic.listen();
  const g = host.guests[0]!;
  const drv = new VirtioBlkDriver(new VirtioBlkPci(host, { guest: 0, disk: 0, queues: 1 }), g);
  const s = { now: 0, rec: undefined as NvmfReconnector | undefined };
  const step = () => {
    s.now += 1000;
    host.now = s.now;
    host.poll();
    if (host.fw.nvmfQueueState(0) === F.NvmfQueueState.IDLE) host.fw.rdmaPoll(1024, s.now);
    fabric.step(s.now);
    nic.step(s.now);
    s.rec?.step(s.now);
  };
  const target = { ip: NIC.ip, mac: NIC.mac, subnqn: DEFAULT_SUBNQN }, hostnqn = "nqn.2026-12.io.wasm-dpu:reconnect";
  const ctrl = connectController({ card: host, target, hostnqn, step, mtu: 1024 });
  registerGuest(host, 0);
  attachDisk(host, 0, ctrl.ioQueues[0]!, ctrl.ns, ctrl.maxTransfer);
  s.rec = new NvmfReconnector({ card: host, target, hostnqn, controllers: [ctrl] });
  return { host, nicCard, nic, backend, drv, g, step, s, ctrl };
}


describe("baseline: a lost controller's connections are torn down and the host reconnects", () => {
  it("linkDown(A) with reads and writes in flight: DREQ, reconnect to B, resubmit, every IO once and verified; A back later takes new connections again", async () => {
    const { host, nic, backend, drv, g, step, s, ctrl } = await setup();
    const a = nic.bindings().find((b) => b.qid === 1)!.controller;
    const ios: { op: BlkOp; lba: number; gpa: number; data: Uint8Array }[] = [];
    for (let i = 0; i < 16; i++) {
      const lba = 128 * i, data = pattern(8192, 700 + i), gpa = g.alloc(8192, 4096), op = i % 2 ? BlkOp.WRITE : BlkOp.READ;
      if (op === BlkOp.READ) backend.write(lba, data);
      else g.u8.set(data, gpa);
      ios.push({ op, lba, gpa, data });
      expect(drv.submit(op, lba, 16, gpa, i)).toBe(true);
    }
    drv.kick();
    const done = new Map<number, number>();
    const reap = () => drv.reap((tag, st) => { expect(done.has(tag)).toBe(false); done.set(tag, st); });
    for (let i = 0; i < 4; i++) { step(); reap(); }
    expect(done.size).toBeLessThan(16);
    nic.linkDown(a);
    for (let i = 0; i < 20_000 && done.size < 16; i++) { step(); reap(); }
    expect([...done.values()]).toEqual(Array(16).fill(0));
    for (const x of ios) {
      const got = x.op === BlkOp.READ ? g.u8.subarray(x.gpa, x.gpa + 8192) : backend.bytes.subarray(x.lba * BS, x.lba * BS + 8192);
      expect(Buffer.compare(got, x.data)).toBe(0);
    }
    const f = nic.failovers();
    expect(f).toMatchObject({ mode: "reconnect", takeovers: 0, commandsMoved: 0 });
    expect(f.disconnects).toBeGreaterThanOrEqual(1);
    const st = s.rec!.stats();
    expect(st.reconnects).toBeGreaterThanOrEqual(1);
    expect(st.failed).toBe(0);
    expect(nic.bindings().every((b) => b.home !== a && b.controller !== a)).toBe(true); // bound to the live controller only
    for (const q of [ctrl.adminQueue, ...ctrl.ioQueues]) expect(host.fw.nvmfQueueState(q)).toBe(F.NvmfQueueState.LIVE);
    nic.linkUp(a);
    const buf = g.alloc(4096, 4096);
    expect(drv.submit(BlkOp.READ, 128, 8, buf, 99)).toBe(true);
    drv.kick();
    let st2 = -1;
    for (let i = 0; i < 2000 && st2 < 0; i++) { step(); drv.reap((_t, x) => { st2 = x; }); }
    expect(st2).toBe(0);
    expect(Buffer.compare(g.u8.subarray(buf, buf + 4096), backend.bytes.subarray(128 * BS, 128 * BS + 4096))).toBe(0);
    expect(nic.failovers().controllers[a]).toMatchObject({ link: "up", nic: "up" });
  });
});
