// The reconnect rig shared by the baseline and the host-side reconnect tests.
import { expect } from "vitest";
import { BlkOp } from "../../host/guest/driver.js";
import { pattern } from "./nvmf.js";
import { Card } from "../../host/card.js";
import { Fabric } from "../../host/fabric/fabric.js";
import { VirtioBlkPci } from "../../host/pcie/virtio-pci.js";
import { VirtioBlkDriver } from "../../host/guest/virtio-blk.js";
import { MemoryBackend } from "../../host/backends/memory.js";
import { StorageNic } from "../../host/target/nic.js";
import { DEFAULT_SUBNQN } from "../../host/target/subsystem.js";
import { connectController, registerGuest, attachDisk, ipWire, macHi, macLo } from "../../host/nvmeof/initiator.js";
import { NvmfReconnector } from "../../host/nvmeof/reconnect.js";
import * as F from "../../assembly/nvmeof/defs.js";

const HOST = { ip: [10, 0, 0, 1], mac: [2, 0, 0, 0, 0, 1] };
const NIC = { ip: [10, 0, 0, 2], mac: [2, 0, 0, 0, 0, 2] };
export const BS = 512, BLOCKS = 8192;
const RAM = 8 << 20;

/**
 * A DPU with a virtio-blk VM on a remote disk, a NIC with 2 controllers in `mode`, a fabric, the
 * association brought up and an NvmfReconnector stepping with everything else.
 */
export async function reconnectWorld(mode: "connectors" | "reconnect") {
  const host = await Card.create({ guests: [{ ramBytes: RAM }], disks: [{ kind: "nvmeof", blockSize: BS, blocks: BLOCKS }] });
  const nicCard = await Card.create({ guests: [], disks: [] });
  const backend = new MemoryBackend(new Uint8Array(BS * BLOCKS), BS);
  const nic = new StorageNic(nicCard, backend, { controllers: 2, mode });
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

type World = Awaited<ReturnType<typeof reconnectWorld>>;

/**
 * 16 mixed 8 KiB IOs in flight (odd ones write, even ones read data put on the backend first).
 * `reap()` records each completion, failing the test on a second one; `verify()` checks every
 * read landed in guest RAM and every write in the backend.
 */
export function mixedIo(w: World, seed: number) {
  const { drv, g, backend } = w;
  const ios: { op: BlkOp; lba: number; gpa: number; data: Uint8Array }[] = [];
  for (let i = 0; i < 16; i++) {
    const lba = 128 * i, data = pattern(8192, seed + i), gpa = g.alloc(8192, 4096), op = i % 2 ? BlkOp.WRITE : BlkOp.READ;
    if (op === BlkOp.READ) backend.write(lba, data);
    else g.u8.set(data, gpa);
    ios.push({ op, lba, gpa, data });
    expect(drv.submit(op, lba, 16, gpa, i)).toBe(true);
  }
  drv.kick();
  const done = new Map<number, number>();
  const reap = () => drv.reap((tag, st) => { expect(done.has(tag)).toBe(false); done.set(tag, st); });
  const verify = () => {
    for (const x of ios) {
      const got = x.op === BlkOp.READ ? g.u8.subarray(x.gpa, x.gpa + 8192) : backend.bytes.subarray(x.lba * BS, x.lba * BS + 8192);
      expect(Buffer.compare(got, x.data)).toBe(0);
    }
  };
  return { done, reap, verify };
}
