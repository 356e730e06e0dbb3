// A scripted NVMe-oF target on a second card, written in TS over that card's RC engine (the
// firmware's own target is the storage-side NIC; this one exists to check the DPU host against
// what NVMe-oF 1.1 §7.3 says, independently): RDMA-CM listener on 4420, receives posted for
// command capsules, Fabrics Connect / Property Get / Set, Identify, and NVM Read / Write /
// Flush / Write Zeroes / DSM on a byte array. Reads: RDMA WRITE the data, then SEND the
// response; keyed writes: RDMA READ, then (on its completion) SEND the response; in-capsule
// writes take the data from the capsule. Every capsule received is logged for the tests, and
// a hook may answer a command with any status or not at all.
import { Card } from "../../host/card.js";
import { Fabric } from "../../host/fabric/fabric.js";
import type { Link, LinkOptions } from "../../host/fabric/link.js";
import { VirtioBlkPci } from "../../host/pcie/virtio-pci.js";
import { VirtioBlkDriver } from "../../host/guest/virtio-blk.js";
import { NvmePci } from "../../host/pcie/nvme-pci.js";
import { NvmeDriver } from "../../host/guest/nvme.js";
import { BlkOp, type BlockDriver } from "../../host/guest/driver.js";
import { connectController, registerGuest, attachDisk, type NvmfController, type InitiatorOptions } from "../../host/nvmeof/initiator.js";
import * as CW from "../../assembly/rdma/cm-wire.js";
import * as S from "../../assembly/nvme/spec.js";
import * as F from "../../assembly/nvmeof/defs.js";
import * as REG from "../../assembly/nvme/regs.js";
import { postSend, postRecv, poll, R, type Side, type Cqe } from "../rdma/rc-setup.js";
import { ipWire, macHi, macLo, HOST, TARGET } from "../rdma/cm-pair.js";

export { BlkOp, F, S };

const VA0 = 0x1_2345_0000n; // rc-setup.ts: laddr = VA0 + offset in the target's guest 0 RAM
const RAM = 4 << 20;
const RECV_DEPTH = 64;
const RECV_SLOT = 0x1100;
const RECV_BASE = 0x10000; // + conn index * RECV_DEPTH * RECV_SLOT
const CQE_BASE = 0x180000; // 256 response buffers of 64 bytes
const STAGE_BASE = 0x200000; // 32 staging buffers of 64 KiB for data, each held until its RDMA work completes
const STAGE_SIZE = 0x10000;
const STAGES = 32;
const WR_READ = 0x8000_0000; // wrid tag of an RDMA READ for a keyed write (| stage index)
const WR_WRITE = 0x4000_0000; // wrid tag of an RDMA WRITE of read data (| stage index)

export const SUBNQN = "nqn.2026-12.io.wasm-dpu:scripted";
export const HOSTNQN = "nqn.2026-12.io.wasm-dpu:host";

/** A command capsule as it arrived: the SQE fields, and the raw bytes. */
export interface Capsule {
  qid: number; bytes: Uint8Array; opc: number; psdt: number; cid: number; nsid: number;
  slba: bigint; nlb: number; sglAddr: bigint; sglLen: number; sglKey: number; sglId: number;
}

/** What a hook returns for a command: a status to answer with (no data moved), or "drop" (no answer). */
export type HookResult = { status: number; dw0?: number } | "drop" | undefined;

interface Conn { side: Side; qid: number; index: number; id: number; commId: number }

export class ScriptedTarget {
  readonly disk: Uint8Array;
  readonly capsules: Capsule[] = [];
  /** Answer a command differently (error injection); undefined = normal processing. */
  hook: ((c: Capsule) => HookResult) | undefined;
  /** Stop answering Fabrics Connect with success: the status to answer with instead. */
  connectStatus = 0;
  cntlid = 0x21;
  /** CAP.MQES (0's based) and Identify MDTS this target reports. */
  mqes = 63;
  mdts = 5;
  cc = 0;
  csts = 0;
  errors: string[] = [];
  /** While set, I/O commands are logged and held unanswered until release(). */
  hold = false;
  /** Refuse this many of the next I/O queue Connects (status connectStatus, or Connect Invalid Host). */
  refuseIoConnects = 0;
  /** Every admin Connect makes a new association with the next CNTLID (a real target's dynamic controllers). */
  newCntlidPerAdmin = false;
  /** Connections accepted so far (a reconnect is one more). */
  accepted = 0;
  private held: [Conn, Uint8Array][] = [];
  private readonly conns = new Map<number, Conn>();
  private readonly reads = new Map<number, { conn: Conn; cid: number; off: number; len: number }>();
  private readonly freeStages = Array.from({ length: STAGES }, (_, i) => i);
  private readonly stageOwner = new Map<number, Conn>(); // staging buffers in use, by the connection whose RDMA work holds them
  private listener = -1;
  private adminConnects = 0;
  private cqes = 0;
  private key = 0;

  constructor(readonly card: Card, readonly blockSize: number, readonly blocks: number) {
    this.disk = new Uint8Array(blockSize * blocks);
    this.key = card.fw.rdmaMrRegister(0, 0, RAM, Number(VA0 >> 32n), Number(VA0 & 0xffffffffn), R.MR_LOCAL_WRITE | R.MR_REMOTE_READ | R.MR_REMOTE_WRITE);
    if (this.key === 0) throw new Error("target MR");
  }

  /** Take up new connections, forget ended ones, then handle every completion on every connection. */
  serve(): void {
    this.accept();
    for (const c of [...this.conns.values()]) {
      if (!this.alive(c)) { this.forget(c); continue; }
      for (const e of poll(c.side)) this.completion(c, e);
    }
  }

  /** The target ends qid's connection with a DREQ (RDMA-CM), as a target that drops a queue does. */
  disconnect(qid: number): void {
    if (this.card.fw.rdmaCmDisconnect(this.conn(qid).id) !== 0) throw new Error(`qid ${qid}: DREQ refused`);
  }

  /** qid's QP on the target goes to ERR without a word to the host (its RC engine stops answering). */
  breakQp(qid: number): void {
    if (this.card.fw.rdmaQpModify(this.conn(qid).side.qpn, 4 /* ERR */, 0, 0, 0) !== 0) throw new Error("QP modify");
  }

  /** Accept RDMA-CM connections on the NVMe-oF port (world() does), or stop: REQs are then rejected. */
  listen(on: boolean): void {
    if (on && this.listener < 0) {
      this.listener = this.card.fw.rdmaCmListen(F.NVMF_PORT);
      if (this.listener === CW.CM_NONE) throw new Error("scripted target: cannot listen");
    }
    else if (!on && this.listener >= 0) { this.card.fw.rdmaCmRelease(this.listener); this.listener = -1; }
  }

  /** The live connection of qid. */
  conn(qid: number): Conn {
    const c = [...this.conns.values()].find((x) => x.qid === qid);
    if (!c) throw new Error(`no connection for qid ${qid}`);
    return c;
  }

  private alive(c: Conn): boolean {
    const fw = this.card.fw, st = fw.rdmaCmState(c.id);
    return (st === CW.CmState.ESTABLISHED || st === CW.CmState.REP_SENT || st === CW.CmState.DISCONNECTING)
      && this.card.dv.getUint32(fw.rdmaCmConnAddr(c.id) + CW.CN_LOCAL_COMM_ID, true) === c.commId;
  }

  /** An ended connection: its held commands, pending transfers and staging buffers go with it. */
  private forget(c: Conn): void {
    this.conns.delete(c.side.qpn);
    this.held = this.held.filter(([h]) => h !== c);
    for (const [w, r] of this.reads) if (r.conn === c) this.reads.delete(w);
    for (const [i, o] of this.stageOwner) if (o === c) { this.stageOwner.delete(i); this.freeStages.push(i); }
  }

  /** Send `bytes` as a response capsule on the connection of qid (tests: garbage, duplicates). */
  sendRaw(qid: number, bytes: Uint8Array): void {
    const c = this.conn(qid);
    const off = CQE_BASE + (this.cqes++ % 256) * 64;
    this.card.u8.set(bytes, this.card.guests[0]!.base + off);
    postSend(c.side, [{ op: R.WrOp.SEND, wrid: 0, off, len: bytes.length }]);
  }

  private accept(): void {
    const fw = this.card.fw, dv = this.card.dv;
    for (let id = 0; id < 64; id++) {
      const st = fw.rdmaCmState(id);
      if (st !== CW.CmState.ESTABLISHED && st !== CW.CmState.REP_SENT) continue;
      const a = fw.rdmaCmConnAddr(id);
      const qpn = dv.getUint32(a + CW.CN_LOCAL_QPN, true), commId = dv.getUint32(a + CW.CN_LOCAL_COMM_ID, true);
      const old = this.conns.get(qpn);
      if (old && old.commId === commId) continue;
      if (old) this.forget(old); // its QP number went to a new connection
      const blk = fw.rdmaRcBlock(qpn);
      if (dv.getUint32(blk + R.RCC_ON, true) === 0) continue;
      const used = new Set([...this.conns.values()].map((x) => x.index));
      let index = 0; // a receive buffer area no live connection uses
      while (used.has(index)) index++;
      if (RECV_BASE + (index + 1) * RECV_DEPTH * RECV_SLOT > CQE_BASE) throw new Error("scripted target: too many connections");
      this.accepted++;
      const side: Side = { c: this.card, qpn, key: this.key, ram: this.card.guests[0]!.base, blk };
      const base = RECV_BASE + index * RECV_DEPTH * RECV_SLOT;
      const n = postRecv(side, Array.from({ length: RECV_DEPTH }, (_, i) => ({ wrid: i, off: base + i * RECV_SLOT, len: RECV_SLOT })));
      if (n !== RECV_DEPTH) throw new Error("target receives");
      this.conns.set(qpn, { side, qid: dv.getUint32(a + CW.CN_QID, true), index, id, commId });
    }
  }

  private completion(c: Conn, e: Cqe): void {
    if (e.status !== R.WcStatus.SUCCESS) { this.errors.push(`qpn ${c.side.qpn} wrid ${e.wrid} status ${e.status}`); return; }
    if (e.wrid >= WR_WRITE) this.stageOwner.delete(e.wrid & (STAGES - 1));
    if (e.opcode === R.WcOp.RECV) {
      const off = RECV_BASE + c.index * RECV_DEPTH * RECV_SLOT + e.wrid * RECV_SLOT;
      const at = this.card.guests[0]!.base + off;
      const bytes = this.card.u8.slice(at, at + e.len);
      postRecv(c.side, [{ wrid: e.wrid, off, len: RECV_SLOT }]);
      this.command(c, bytes);
    } else if (e.opcode === R.WcOp.RDMA_READ && e.wrid >= WR_READ) {
      const r = this.reads.get(e.wrid)!, idx = e.wrid - WR_READ;
      this.reads.delete(e.wrid);
      const at = this.card.guests[0]!.base + STAGE_BASE + idx * STAGE_SIZE;
      this.disk.set(this.card.u8.subarray(at, at + r.len), r.off);
      this.freeStages.push(idx);
      this.respond(r.conn, r.cid, 0);
    } else if (e.opcode === R.WcOp.RDMA_WRITE && e.wrid >= WR_WRITE) this.freeStages.push(e.wrid - WR_WRITE);
  }

  private command(c: Conn, bytes: Uint8Array): void {
    const dv = new DataView(bytes.buffer);
    const cdw0 = dv.getUint32(S.SQE_CDW0, true);
    const sgl = F.SQE_SGL1;
    const cap: Capsule = {
      qid: c.qid, bytes, opc: cdw0 & 0xff, psdt: (cdw0 >>> 14) & 3, cid: cdw0 >>> 16, nsid: dv.getUint32(S.SQE_NSID, true),
      slba: dv.getBigUint64(S.SQE_CDW10, true), nlb: (dv.getUint32(S.SQE_CDW12, true) & 0xffff) + 1,
      sglAddr: dv.getBigUint64(sgl + F.SGL_ADDR, true), sglLen: dv.getUint16(sgl + F.SGL_KEYED_LEN, true) | (dv.getUint8(sgl + F.SGL_KEYED_LEN + 2) << 16),
      sglKey: dv.getUint32(sgl + F.SGL_KEYED_KEY, true), sglId: dv.getUint8(sgl + F.SGL_ID),
    };
    this.capsules.push(cap);
    if (this.hold && c.qid !== 0) { this.held.push([c, bytes]); return; }
    const h = this.hook?.(cap);
    if (h === "drop") return;
    if (h) { this.respond(c, cap.cid, h.status, h.dw0 ?? 0); return; }
    if (cap.opc === F.OPC_FABRICS) this.fabrics(c, cap, dv);
    else if (c.qid === 0) this.admin(c, cap, dv);
    else this.io(c, cap, dv);
  }

  /** Answer the held commands (and stop holding). */
  release(): void {
    this.hold = false;
    const h = this.held.splice(0);
    for (const [c, bytes] of h) { this.capsules.pop(); this.command(c, bytes); } // command() logs it again
  }

  private fabrics(c: Conn, cap: Capsule, dv: DataView): void {
    const type = dv.getUint8(F.FAB_FCTYPE);
    if (type === F.FCTYPE_CONNECT && c.qid !== 0 && this.refuseIoConnects > 0) {
      this.refuseIoConnects--;
      this.respond(c, cap.cid, this.connectStatus || F.S_CONNECT_INVALID_HOST);
    } else if (type === F.FCTYPE_CONNECT) {
      const d = new DataView(cap.bytes.buffer, S.SQE_SIZE);
      const cntlid = d.getUint16(F.CD_CNTLID, true);
      const subnqn = new TextDecoder().decode(cap.bytes.subarray(S.SQE_SIZE + F.CD_SUBNQN, S.SQE_SIZE + F.CD_SUBNQN + F.NQN_LEN)).replace(/\0+$/, "");
      const qid = dv.getUint16(F.CONN_QID, true);
      if (qid === 0 && this.adminConnects++ > 0 && this.newCntlidPerAdmin) this.cntlid++;
      const ok = cap.sglId === F.SGL_ID_INCAPSULE && cap.bytes.length === S.SQE_SIZE + F.CONN_DATA_SIZE && subnqn === SUBNQN && qid === c.qid
        && (qid === 0 ? cntlid === F.CNTLID_DYNAMIC : cntlid === this.cntlid);
      const st = this.connectStatus || (ok ? 0 : F.S_CONNECT_INVALID_PARAMETERS);
      this.respond(c, cap.cid, st, st === 0 ? this.cntlid : 0);
    } else if (type === F.FCTYPE_PROPERTY_SET) {
      if (dv.getUint32(F.PROP_OFFSET, true) === REG.NVME_REG_CC) {
        this.cc = dv.getUint32(F.PROP_VALUE, true);
        this.csts = (this.cc & REG.NVME_CC_EN ? REG.NVME_CSTS_RDY : 0)
          | ((this.cc >>> REG.NVME_CC_SHN_SHIFT) & 3 ? REG.NVME_SHST_COMPLETE << REG.NVME_CSTS_SHST_SHIFT : 0);
      }
      this.respond(c, cap.cid, 0);
    } else if (type === F.FCTYPE_PROPERTY_GET) {
      const off = dv.getUint32(F.PROP_OFFSET, true), size8 = (dv.getUint8(F.PROP_ATTRIB) & 1) === F.PROP_SIZE_8;
      if (size8 && off === REG.NVME_REG_CAP) this.respond(c, cap.cid, 0, this.mqes, REG.NVME_CAP_HI_CSS_NVM);
      else if (size8) this.respond(c, cap.cid, S.S_INVALID_FIELD);
      else this.respond(c, cap.cid, 0, off === REG.NVME_REG_CSTS ? this.csts : off === REG.NVME_REG_CC ? this.cc : 0);
    } else this.respond(c, cap.cid, S.S_INVALID_OPCODE);
  }

  private admin(c: Conn, cap: Capsule, dv: DataView): void {
    if (cap.opc !== S.ADM_IDENTIFY) { this.respond(c, cap.cid, S.S_INVALID_OPCODE); return; }
    const data = new Uint8Array(S.IDENTIFY_SIZE);
    const d = new DataView(data.buffer);
    const cns = dv.getUint32(S.SQE_CDW10, true) & 0xff;
    if (cns === S.CNS_CONTROLLER) {
      data.fill(0x20, S.IDC_MN, S.IDC_MN + S.IDC_MN_LEN);
      data.set(new TextEncoder().encode("scripted target"), S.IDC_MN);
      d.setUint16(S.IDC_CNTLID, this.cntlid, true);
      d.setUint8(S.IDC_MDTS, this.mdts);
    } else if (cns === S.CNS_NAMESPACE && cap.nsid === 1) {
      d.setBigUint64(S.IDN_NSZE, BigInt(this.blocks), true);
      d.setBigUint64(S.IDN_NCAP, BigInt(this.blocks), true);
      d.setUint32(S.IDN_LBAF0, Math.log2(this.blockSize) << S.LBAF_LBADS_SHIFT, true);
    } else { this.respond(c, cap.cid, S.S_INVALID_NAMESPACE); return; }
    this.writeThenRespond(c, cap, data);
  }

  private io(c: Conn, cap: Capsule, dv: DataView): void {
    const bs = this.blockSize;
    const inRange = (slba: bigint, n: number) => slba + BigInt(n) <= BigInt(this.blocks);
    if (cap.nsid !== 1) { this.respond(c, cap.cid, S.S_INVALID_NAMESPACE); return; }
    if (cap.opc === S.IO_READ || cap.opc === S.IO_WRITE || cap.opc === S.IO_WRITE_ZEROES) {
      if (!inRange(cap.slba, cap.nlb)) { this.respond(c, cap.cid, S.S_LBA_OUT_OF_RANGE); return; }
    }
    const off = Number(cap.slba) * bs, len = cap.nlb * bs;
    if (cap.opc === S.IO_READ) this.writeThenRespond(c, cap, this.disk.slice(off, off + len));
    else if (cap.opc === S.IO_WRITE) {
      if (cap.sglId === F.SGL_ID_INCAPSULE) {
        this.disk.set(cap.bytes.subarray(S.SQE_SIZE + Number(cap.sglAddr), S.SQE_SIZE + Number(cap.sglAddr) + len), off);
        this.respond(c, cap.cid, 0);
      } else {
        const idx = this.stage(len, c), wrid = WR_READ + idx;
        this.reads.set(wrid, { conn: c, cid: cap.cid, off, len });
        postSend(c.side, [{ op: R.WrOp.READ, wrid, off: STAGE_BASE + idx * STAGE_SIZE, len, rkey: cap.sglKey, raddr: cap.sglAddr }]);
      }
    } else if (cap.opc === S.IO_FLUSH) this.respond(c, cap.cid, 0);
    else if (cap.opc === S.IO_WRITE_ZEROES) { this.disk.fill(0, off, off + len); this.respond(c, cap.cid, 0); }
    else if (cap.opc === S.IO_DSM) {
      const r = new DataView(cap.bytes.buffer, S.SQE_SIZE + Number(cap.sglAddr));
      const nlb = r.getUint32(S.DSM_RANGE_NLB, true), slba = r.getBigUint64(S.DSM_RANGE_SLBA, true);
      if (!inRange(slba, nlb)) { this.respond(c, cap.cid, S.S_LBA_OUT_OF_RANGE); return; }
      this.disk.fill(0, Number(slba) * bs, (Number(slba) + nlb) * bs);
      this.respond(c, cap.cid, 0);
    } else this.respond(c, cap.cid, S.S_INVALID_OPCODE);
  }

  /** A free staging buffer's index (the scripted target keeps up to STAGES transfers going). */
  private stage(len: number, c: Conn): number {
    if (len > STAGE_SIZE) throw new Error(`scripted target: ${len}-byte transfer, at most ${STAGE_SIZE}`);
    const i = this.freeStages.shift();
    if (i === undefined) throw new Error("scripted target: out of staging buffers");
    this.stageOwner.set(i, c);
    return i;
  }

  /** RDMA WRITE data to the command's keyed SGL, then the response (RC keeps them in order). */
  private writeThenRespond(c: Conn, cap: Capsule, data: Uint8Array): void {
    const n = Math.min(data.length, cap.sglLen);
    const idx = this.stage(n, c), stage = STAGE_BASE + idx * STAGE_SIZE;
    this.card.u8.set(data.subarray(0, n), this.card.guests[0]!.base + stage);
    postSend(c.side, [{ op: R.WrOp.WRITE, wrid: WR_WRITE + idx, off: stage, len: n, rkey: cap.sglKey, raddr: cap.sglAddr }]);
    this.respond(c, cap.cid, 0);
  }

  /** SEND the 16-byte response capsule: DW0, SQHD | SQID, CID | status. */
  respond(c: Conn, cid: number, status: number, dw0 = 0, dw1 = 0): void {
    const off = CQE_BASE + (this.cqes++ % 256) * 64;
    const at = this.card.guests[0]!.base + off, dv = this.card.dv;
    this.card.u8.fill(0, at, at + 16);
    dv.setUint32(at + S.CQE_DW0, dw0, true);
    dv.setUint32(at + S.CQE_DW1, dw1, true);
    dv.setUint32(at + S.CQE_DW2, (c.qid << 16) >>> 0, true);
    dv.setUint32(at + S.CQE_DW3, (cid | (status << S.CQE_STATUS_SHIFT)) >>> 0, true);
    postSend(c.side, [{ op: R.WrOp.SEND, wrid: 2, off, len: S.CQE_SIZE }]);
  }
}

/** Host card (guest 0, remote disk 0, a virtio-blk function) and the scripted target, on a fabric. */
export interface World {
  host: Card; target: ScriptedTarget; tcard: Card; fabric: Fabric; link: Link; now: number;
  step: () => void; drv: BlockDriver; virtio?: VirtioBlkDriver;
}

/** The two cards; the front end (virtio-blk by default, or NVMe) is on host function 0 over remote disk 0. */
export async function world(o: { blockSize?: number; blocks?: number; front?: "virtio" | "nvme"; link?: LinkOptions; seed?: number } = {}): Promise<World> {
  const bs = o.blockSize ?? 512, blocks = o.blocks ?? 4096;
  const host = await Card.create({ guests: [{ ramBytes: RAM }], disks: [{ kind: "nvmeof", blockSize: bs, blocks }] });
  const tcard = await Card.create({ guests: [{ ramBytes: RAM }], disks: [] });
  const fabric = new Fabric({ seed: o.seed ?? 11 });
  const link = fabric.connect({ card: host, port: 0 }, { card: tcard, port: 0 }, { gbps: 100, latencyNs: 2000, ...o.link });
  if (host.fw.rdmaCmInit(ipWire(HOST.ip), macHi(HOST.mac), macLo(HOST.mac)) !== 0) throw new Error("host CM");
  if (tcard.fw.rdmaCmInit(ipWire(TARGET.ip), macHi(TARGET.mac), macLo(TARGET.mac)) !== 0) throw new Error("target CM");
  const target = new ScriptedTarget(tcard, bs, blocks);
  target.listen(true);
  let drv: BlockDriver, virtio: VirtioBlkDriver | undefined;
  if (o.front === "nvme") drv = NvmeDriver.open(new NvmePci(host, { guest: 0, disk: 0, ioQueues: 1 }), {});
  else drv = virtio = new VirtioBlkDriver(new VirtioBlkPci(host, { guest: 0, disk: 0, queues: 1 }), host.guests[0]!);
  const w: World = { host, target, tcard, fabric, link, now: 0, drv, step: () => {} };
  if (virtio) w.virtio = virtio;
  w.step = () => {
    w.now += 1000;
    fabric.step(w.now);
    host.now = w.now;
    host.poll();
    // Before any fabric queue exists, poll() leaves the RDMA engine alone: the CM still runs.
    if (host.fw.nvmfQueueState(0) === F.NvmfQueueState.IDLE) host.fw.rdmaPoll(1024, w.now);
    tcard.fw.rdmaPoll(1024, w.now);
    target.serve();
  };
  return w;
}

/** Bring the controller up (admin + one I/O queue), register guest 0, attach disk 0. */
export function bringUp(w: World, o: Partial<InitiatorOptions> = {}): NvmfController {
  const ctrl = connectController({
    card: w.host, target: { ip: TARGET.ip, mac: TARGET.mac, subnqn: SUBNQN }, hostnqn: HOSTNQN, step: w.step, ...o,
  });
  registerGuest(w.host, 0);
  attachDisk(w.host, 0, ctrl.ioQueues[0]!, ctrl.ns, ctrl.maxTransfer);
  return ctrl;
}

/** Submit one request through the front end, kick, and step until it completes; returns its status. */
export function vio(w: World, op: BlkOp, lba: number, nblocks: number, gpa: number, maxSteps = 2000): number {
  if (!w.drv.submit(op, lba, nblocks, gpa, 77)) throw new Error("queue full");
  w.drv.kick();
  return settle(w, 1, maxSteps)[0]!;
}

/** Step until n completions were reaped; returns their statuses in completion order. */
export function settle(w: World, n: number, maxSteps = 5000): number[] {
  const out: number[] = [];
  for (let i = 0; i < maxSteps && out.length < n; i++) {
    w.step();
    w.drv.reap((_t, s) => { out.push(s); });
  }
  if (out.length < n) throw new Error(`only ${out.length} of ${n} requests completed`);
  return out;
}

/** Deterministic bytes (xorshift32). */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}
