// NVMe-oF host bring-up (NVMe-oF 1.1 §3, §7.3): what the Linux nvme-rdma host does before any
// I/O, driven from TypeScript against the DPU firmware's fabric queues. Per queue: RDMA-CM
// connect (the REQ carries the NVMe-oF private data), nvmfQueueSetup on the connected QP, a
// Fabrics Connect capsule (admin: CNTLID FFFFh, the target picks one; I/O queues: that one);
// on the admin queue Property Set CC.EN = 1, Property Get CSTS until RDY, Identify Controller
// and Identify Namespace. Setup commands cross into the firmware once each (nvmfSubmitRaw /
// nvmfRawResult); the data path never comes here.
import type { Card } from "../card.js";
import * as CW from "../../assembly/rdma/cm-wire.js";
import * as R from "../../assembly/rdma/rcdefs.js";
import * as S from "../../assembly/nvme/spec.js";
import * as F from "../../assembly/nvmeof/defs.js";
import * as REG from "../../assembly/nvme/regs.js";

export interface NvmfTargetAddress { ip: number[]; mac: number[]; port?: number; subnqn: string }

export interface InitiatorOptions {
  card: Card;
  target: NvmfTargetAddress;
  hostnqn: string;
  /** 16-byte host identifier (Connect data); zeros by default. */
  hostid?: Uint8Array;
  /** Advance the world one round: the fabric, this card's poll (and the target's). */
  step: () => void;
  /** Fabric queue index of the admin queue; I/O queues follow it. Default 0. */
  firstQueue?: number;
  /** I/O queues to connect (qid 1..n). Default 1. */
  ioQueues?: number;
  /** Capsules in flight per queue (≤ NVMF_DEPTH); also the SQ size announced. Default 32. */
  depth?: number;
  /** Path MTU for the RDMA-CM REQ. Default 1024. */
  mtu?: number;
  /** Namespace to identify and serve. Default 1. */
  nsid?: number;
  /** Guest whose RAM holds the setup commands' buffers. Default 0. */
  scratchGuest?: number;
  /** Give up after this many steps for one exchange. Default 20000. */
  maxSteps?: number;
}

export interface NvmfNamespace { nsid: number; blocks: number; blockSize: number }
export interface NvmfController {
  cntlid: number;
  adminQueue: number;
  /** Fabric queue indexes of the I/O queues (qid 1, 2, ...). */
  ioQueues: number[];
  /** RDMA-CM connection ids: the admin queue's, then each I/O queue's. */
  cmIds: number[];
  /** Model number from Identify Controller (trimmed). */
  model: string;
  ns: NvmfNamespace;
  /** Capsules in flight per I/O queue: the depth asked for, at most CAP.MQES + 1. */
  ioDepth: number;
  /** Largest transfer of one command in bytes (Identify MDTS in CAP.MPSMIN pages); 0 = no limit. */
  maxTransfer: number;
}

/** An NVMe-oF bring-up step failed; the message names the target, queue and cause. */
export class NvmfError extends Error {}

const CONNECT_STATUS: Record<number, string> = {
  [F.S_CONNECT_INCOMPATIBLE_FORMAT]: "Connect Incompatible Format",
  [F.S_CONNECT_CONTROLLER_BUSY]: "Connect Controller Busy",
  [F.S_CONNECT_INVALID_PARAMETERS]: "Connect Invalid Parameters",
  [F.S_CONNECT_INVALID_HOST]: "Connect Invalid Host",
};
const GENERIC_STATUS: Record<number, string> = {
  [S.S_INVALID_OPCODE & 0xff]: "Invalid Command Opcode",
  [S.S_INVALID_FIELD & 0xff]: "Invalid Field in Command",
  [S.S_DATA_TRANSFER_ERROR & 0xff]: "Data Transfer Error",
  [S.S_INTERNAL_ERROR & 0xff]: "Internal Error",
  [S.S_INVALID_NAMESPACE & 0xff]: "Invalid Namespace or Format",
};
const STATUS_MASK = 0x7ff; // SC and SCT (nvme/spec.ts status layout)

/** A readable name for an NVMe status field (SC | SCT << 8). */
export function statusName(st: number): string {
  const s = st & STATUS_MASK;
  if (CONNECT_STATUS[s]) return CONNECT_STATUS[s]!;
  if (s >> S.ST_SCT_SHIFT === 0 && GENERIC_STATUS[s]) return GENERIC_STATUS[s]!;
  return `SCT ${s >> S.ST_SCT_SHIFT}h SC ${(s & 0xff).toString(16).padStart(2, "0")}h`;
}

/** An IPv4 address as the firmware takes it (wire bytes a.b.c.d loaded little-endian); a MAC as its first two and last four bytes. */
export const ipWire = (ip: number[]) => (ip[0]! | (ip[1]! << 8) | (ip[2]! << 16) | (ip[3]! << 24)) >>> 0;
export const macHi = (m: number[]) => (m[0]! << 8) | m[1]!;
export const macLo = (m: number[]) => ((m[2]! << 24) | (m[3]! << 16) | (m[4]! << 8) | m[5]!) >>> 0;
const RAW_NONE = 0xffffffff;
const IDENTIFY_BYTES = 4096;

interface Cqe { dw0: number; dw1: number; status: number }

/** CC to enable a controller: EN, 64-byte SQEs, 16-byte CQEs (base §3.1.3.5). */
export const CC_ENABLE = REG.NVME_CC_EN | (REG.NVME_SQES_LOG2 << REG.NVME_CC_IOSQES_SHIFT) | (REG.NVME_CQES_LOG2 << REG.NVME_CC_IOCQES_SHIFT);

/** Zero the SQE at card offset sqe (and the 1024 bytes after it) and set CDW0 and the SGL: in-capsule data of len bytes, or a null keyed descriptor. */
function clearSqe(card: Card, sqe: number, opc: number, withData: boolean, len = 0): DataView {
  card.u8.fill(0, sqe, sqe + S.SQE_SIZE + F.CONN_DATA_SIZE);
  const dv = new DataView(card.u8.buffer, sqe, S.SQE_SIZE + F.CONN_DATA_SIZE);
  dv.setUint32(S.SQE_CDW0, opc | F.CDW0_PSDT_SGL, true);
  const sgl = F.SQE_SGL1;
  if (withData) { // in-capsule data at offset 0
    dv.setUint32(sgl + F.SGL_LEN, len, true);
    dv.setUint8(sgl + F.SGL_ID, F.SGL_ID_INCAPSULE);
  } else dv.setUint8(sgl + F.SGL_ID, F.SGL_ID_KEYED); // null keyed descriptor
  return dv;
}

export interface ConnectFields { qid: number; sqsize: number; cntlid: number; subnqn: string; hostnqn: string; hostid?: Uint8Array | undefined }

/**
 * A Fabrics Connect (NVMe-oF §3.3) at card offset sqe: the SQE, then its 1024 bytes of data
 * in the capsule (send it with dataLen F.CONN_DATA_SIZE). sqsize is 0's based.
 */
export function writeConnect(card: Card, sqe: number, f: ConnectFields): void {
  const dv = clearSqe(card, sqe, F.OPC_FABRICS, true, F.CONN_DATA_SIZE);
  dv.setUint8(F.FAB_FCTYPE, F.FCTYPE_CONNECT);
  dv.setUint16(F.CONN_RECFMT, 0, true);
  dv.setUint16(F.CONN_QID, f.qid, true);
  dv.setUint16(F.CONN_SQSIZE, f.sqsize, true);
  const d = sqe + S.SQE_SIZE;
  if (f.hostid) card.u8.set(f.hostid.subarray(0, 16), d + F.CD_HOSTID);
  dv.setUint16(S.SQE_SIZE + F.CD_CNTLID, f.cntlid, true);
  const enc = new TextEncoder();
  card.u8.set(enc.encode(f.subnqn).subarray(0, F.NQN_LEN - 1), d + F.CD_SUBNQN);
  card.u8.set(enc.encode(f.hostnqn).subarray(0, F.NQN_LEN - 1), d + F.CD_HOSTNQN);
}

/** A Property Set (value given) or Get of a 4-byte register, or a Get of an 8-byte one (NVMe-oF §3.4, §3.5), at card offset sqe. */
export function writeProperty(card: Card, sqe: number, offset: number, value?: number, size8 = false): void {
  const dv = clearSqe(card, sqe, F.OPC_FABRICS, false);
  dv.setUint8(F.FAB_FCTYPE, value === undefined ? F.FCTYPE_PROPERTY_GET : F.FCTYPE_PROPERTY_SET);
  dv.setUint8(F.PROP_ATTRIB, size8 ? F.PROP_SIZE_8 : F.PROP_SIZE_4);
  dv.setUint32(F.PROP_OFFSET, offset, true);
  if (value !== undefined) dv.setUint32(F.PROP_VALUE, value, true);
}

/** One NVMe-oF controller association being brought up on a card. */
class Initiator {
  readonly card: Card;
  readonly port: number;
  readonly where: string;
  depth: number;
  readonly maxSteps: number;
  readonly cmIds: number[] = [];
  private readonly sqe: number; // card offset: SQE + 1024 bytes of Connect data
  private readonly buf: number; // card offset of a 4 KiB buffer the target writes (Identify)
  private readonly bufKey: number;

  constructor(readonly o: InitiatorOptions) {
    this.card = o.card;
    this.port = o.target.port ?? F.NVMF_PORT;
    this.where = `${o.target.ip.join(".")}:${this.port}`;
    this.depth = o.depth ?? 32;
    this.maxSteps = o.maxSteps ?? 20000;
    const g = this.card.guests[o.scratchGuest ?? 0];
    if (!g) throw new NvmfError(`NVMe-oF connect to ${this.where}: no guest ${o.scratchGuest ?? 0} for setup buffers`);
    this.sqe = g.base + g.alloc(S.SQE_SIZE + F.CONN_DATA_SIZE, 64);
    const b = g.alloc(IDENTIFY_BYTES, 4096);
    this.buf = g.base + b;
    // VA = card offset, like the guests' keys: the keyed SGL names the card offset.
    this.bufKey = this.card.fw.rdmaMrRegister(g.index, b, IDENTIFY_BYTES, 0, this.buf, R.MR_LOCAL_WRITE | R.MR_REMOTE_WRITE);
    if (this.bufKey === 0) throw new NvmfError(`NVMe-oF connect to ${this.where}: cannot register the setup buffer`);
  }

  close(): void { this.card.fw.rdmaMrDeregister(this.bufKey); }

  private until(what: string, done: () => boolean): void {
    for (let i = 0; i < this.maxSteps; i++) {
      if (done()) return;
      this.o.step();
    }
    if (!done()) throw new NvmfError(`${what}: no answer after ${this.maxSteps} steps`);
  }

  /** RDMA-CM connect for qid; returns the connected QP number. */
  cmConnect(qid: number, cntlid: number): number {
    const fw = this.card.fw, t = this.o.target;
    const id = fw.rdmaCmConnect(this.port, qid, this.depth, this.depth - 1, cntlid, this.o.mtu ?? 1024, ipWire(t.ip), macHi(t.mac), macLo(t.mac));
    const what = `NVMe-oF connect to ${this.where} qid ${qid}`;
    if (id === RAW_NONE) throw new NvmfError(`${what}: no RDMA-CM connection slot`);
    const settled = () => { const s = fw.rdmaCmState(id); return s === CW.CmState.ESTABLISHED || s === CW.CmState.REJECTED || s === CW.CmState.TIMED_OUT; };
    this.until(`${what}: RDMA-CM`, settled);
    const st = fw.rdmaCmState(id);
    const a = fw.rdmaCmConnAddr(id);
    if (st === CW.CmState.REJECTED) throw new NvmfError(`${what}: RDMA-CM REJ, reason ${this.card.dv.getUint32(a + CW.CN_REJ_REASON, true)}`);
    if (st !== CW.CmState.ESTABLISHED) throw new NvmfError(`${what}: RDMA-CM gave up (no reply)`);
    this.cmIds.push(id);
    return this.card.dv.getUint32(a + CW.CN_LOCAL_QPN, true);
  }

  /** Send the SQE in the scratch area (+ dataLen in-capsule bytes) on fabric queue q; wait for its CQE. */
  command(q: number, dataLen: number, what: string): Cqe {
    const fw = this.card.fw;
    const cid = fw.nvmfSubmitRaw(q, this.sqe, dataLen);
    if (cid === RAW_NONE) throw new NvmfError(`${what}: the fabric queue refused the command (state ${fw.nvmfQueueState(q)})`);
    let at = 0;
    this.until(what, () => {
      at = fw.nvmfRawResult(q, cid);
      if (at === RAW_NONE) throw new NvmfError(`${what}: the fabric queue failed (QP error or disconnect)`);
      return at !== F.RAW_PENDING;
    });
    const dv = this.card.dv;
    return { dw0: dv.getUint32(at + S.CQE_DW0, true), dw1: dv.getUint32(at + S.CQE_DW1, true), status: dv.getUint32(at + S.CQE_DW3, true) >>> S.CQE_STATUS_SHIFT };
  }

  private check(what: string, c: Cqe): Cqe {
    if ((c.status & STATUS_MASK) !== 0) throw new NvmfError(`${what}: status 0x${(c.status & STATUS_MASK).toString(16)} (${statusName(c.status)})`);
    return c;
  }

  /** Fabrics Connect (§3.3) on fabric queue q for qid; returns the controller ID. */
  connect(q: number, qid: number, cntlid: number): number {
    writeConnect(this.card, this.sqe, { qid, sqsize: this.depth - 1, cntlid, subnqn: this.o.target.subnqn, hostnqn: this.o.hostnqn, hostid: this.o.hostid });
    const what = `NVMe-oF connect to ${this.where} qid ${qid}`;
    return this.check(what, this.command(q, F.CONN_DATA_SIZE, what)).dw0 & 0xffff;
  }

  propertySet(q: number, offset: number, value: number): void {
    writeProperty(this.card, this.sqe, offset, value);
    const what = `NVMe-oF ${this.where}: Property Set 0x${offset.toString(16)}`;
    this.check(what, this.command(q, 0, what));
  }

  /** Property Get (§3.4): a 4-byte register's value, or an 8-byte one's as [low, high]. */
  propertyGet(q: number, offset: number): number;
  propertyGet(q: number, offset: number, size8: true): [number, number];
  propertyGet(q: number, offset: number, size8 = false): number | [number, number] {
    writeProperty(this.card, this.sqe, offset, undefined, size8);
    const what = `NVMe-oF ${this.where}: Property Get 0x${offset.toString(16)}`;
    const c = this.check(what, this.command(q, 0, what));
    return size8 ? [c.dw0, c.dw1] : c.dw0;
  }

  /** Identify (base §5.17) with CNS into the setup buffer (keyed SGL); returns its 4096 bytes. */
  identify(q: number, cns: number, nsid: number): Uint8Array {
    const dv = clearSqe(this.card, this.sqe, S.ADM_IDENTIFY, false);
    dv.setUint32(S.SQE_NSID, nsid, true);
    dv.setUint32(S.SQE_CDW10, cns, true);
    dv.setBigUint64(F.SQE_SGL1 + F.SGL_ADDR, BigInt(this.buf), true);
    dv.setUint16(F.SQE_SGL1 + F.SGL_KEYED_LEN, IDENTIFY_BYTES & 0xffff, true);
    dv.setUint8(F.SQE_SGL1 + F.SGL_KEYED_LEN + 2, IDENTIFY_BYTES >> 16);
    dv.setUint32(F.SQE_SGL1 + F.SGL_KEYED_KEY, this.bufKey, true);
    this.card.u8.fill(0, this.buf, this.buf + IDENTIFY_BYTES);
    const what = `NVMe-oF ${this.where}: Identify CNS ${cns}`;
    this.check(what, this.command(q, 0, what));
    return this.card.u8.slice(this.buf, this.buf + IDENTIFY_BYTES);
  }

  /** CM connect + fabric queue setup + Fabrics Connect for one queue; returns the controller ID. */
  queue(q: number, qid: number, cntlid: number): number {
    const fw = this.card.fw;
    const qpn = this.cmConnect(qid, cntlid);
    const r = fw.nvmfQueueSetup(q, qpn, qid, this.depth);
    if (r !== 0) throw new NvmfError(`NVMe-oF connect to ${this.where} qid ${qid}: fabric queue ${q} setup refused (counter ${r})`);
    const id = this.connect(q, qid, cntlid);
    if (fw.nvmfQueueLive(q) !== 0) throw new NvmfError(`NVMe-oF connect to ${this.where} qid ${qid}: fabric queue ${q} did not go live`);
    return id;
  }
}

/**
 * Bring up a controller association: admin queue, CC.EN, CSTS.RDY, Identify Controller and
 * Namespace, then the I/O queues. Throws NvmfError naming the step and the status on failure.
 */
export function connectController(o: InitiatorOptions): NvmfController {
  const init = new Initiator(o);
  try {
    const aq = o.firstQueue ?? 0;
    const cntlid = init.queue(aq, 0, F.CNTLID_DYNAMIC);
    const [capLo, capHi] = init.propertyGet(aq, REG.NVME_REG_CAP, true);
    const mqes = capLo & 0xffff, mpsmin = (capHi >>> REG.NVME_CAP_HI_MPSMIN_SHIFT) & 0xf;
    init.propertySet(aq, REG.NVME_REG_CC, CC_ENABLE);
    let ready = false;
    for (let i = 0; i < 100 && !ready; i++) {
      ready = (init.propertyGet(aq, REG.NVME_REG_CSTS) & REG.NVME_CSTS_RDY) !== 0;
      if (!ready) o.step();
    }
    if (!ready) throw new NvmfError(`NVMe-oF ${init.where}: controller ${cntlid} never set CSTS.RDY`);
    const idc = init.identify(aq, S.CNS_CONTROLLER, 0);
    const model = new TextDecoder().decode(idc.subarray(S.IDC_MN, S.IDC_MN + S.IDC_MN_LEN)).trim();
    const mdts = idc[S.IDC_MDTS]!;
    const maxTransfer = mdts === 0 ? 0 : 2 ** (12 + mpsmin + mdts);
    const nsid = o.nsid ?? 1;
    const idn = new DataView(init.identify(aq, S.CNS_NAMESPACE, nsid).buffer);
    const flbas = idn.getUint8(S.IDN_FLBAS) & 0xf;
    const lbads = (idn.getUint32(S.IDN_LBAF0 + 4 * flbas, true) >>> S.LBAF_LBADS_SHIFT) & 0xff;
    const ns = { nsid, blocks: Number(idn.getBigUint64(S.IDN_NSZE, true)), blockSize: 2 ** lbads };
    init.depth = Math.min(init.depth, mqes + 1); // I/O queues: no deeper than the controller takes
    const ioQueues: number[] = [];
    for (let i = 1; i <= (o.ioQueues ?? 1); i++) {
      init.queue(aq + i, i, cntlid);
      ioQueues.push(aq + i);
    }
    return { cntlid, adminQueue: aq, ioQueues, cmIds: init.cmIds, model, ns, ioDepth: init.depth, maxTransfer };
  } finally {
    init.close();
  }
}

/**
 * Let the firmware's keyed SGLs name guest g's RAM: one MR over the whole window with VA = the
 * window's card offset, handed to nvmfSetGuestKey. Returns the key.
 */
export function registerGuest(card: Card, g: number): number {
  const w = card.guests[g];
  if (!w) throw new NvmfError(`NVMe-oF: no guest ${g}`);
  const key = card.fw.rdmaMrRegister(g, 0, w.size, 0, w.base, R.MR_LOCAL_WRITE | R.MR_REMOTE_READ | R.MR_REMOTE_WRITE);
  if (key === 0) throw new NvmfError(`NVMe-oF: cannot register guest ${g}'s RAM`);
  card.fw.nvmfSetGuestKey(g, key);
  return key;
}

/**
 * Remote disk d (a card disk of kind "nvmeof") is namespace ns behind fabric queue q; checks the
 * geometry. maxTransfer (NvmfController.maxTransfer): longer requests go out as several commands.
 */
export function attachDisk(card: Card, d: number, q: number, ns: NvmfNamespace, maxTransfer = 0): void {
  const disk = card.disks[d];
  if (!disk || disk.kind !== "nvmeof") throw new NvmfError(`NVMe-oF: disk ${d} is not an nvmeof disk`);
  if (disk.blockSize !== ns.blockSize || disk.blocks > ns.blocks) {
    throw new NvmfError(`NVMe-oF: disk ${d} (${disk.blocks} x ${disk.blockSize} B) does not fit namespace ${ns.nsid} (${ns.blocks} x ${ns.blockSize} B)`);
  }
  card.fw.nvmfSetDisk(d, q, ns.nsid);
  card.fw.nvmfSetMaxTransfer(d, Math.min(maxTransfer, 2 ** 31));
}

/**
 * End the association as a host does (base §3.6.2): I/O queues torn down (their requests fail),
 * CC.SHN = normal shutdown and CSTS.SHST awaited on the admin queue (a target that never
 * reports it is only waited for a bounded time), then the admin queue, then every RDMA-CM
 * connection disconnected (DREQ).
 */
export function disconnectController(o: InitiatorOptions, ctrl: NvmfController): void {
  const fw = o.card.fw;
  for (const q of ctrl.ioQueues) fw.nvmfQueueTeardown(q);
  const init = new Initiator(o);
  try {
    if (fw.nvmfQueueState(ctrl.adminQueue) === F.NvmfQueueState.LIVE) {
      init.propertySet(ctrl.adminQueue, REG.NVME_REG_CC, CC_ENABLE | (1 << REG.NVME_CC_SHN_SHIFT));
      for (let i = 0; i < 100; i++) {
        if (((init.propertyGet(ctrl.adminQueue, REG.NVME_REG_CSTS) >>> REG.NVME_CSTS_SHST_SHIFT) & 3) === REG.NVME_SHST_COMPLETE) break;
        o.step();
      }
    }
  } finally {
    init.close();
    fw.nvmfQueueTeardown(ctrl.adminQueue);
    for (const id of ctrl.cmIds) if (fw.rdmaCmState(id) === CW.CmState.ESTABLISHED) fw.rdmaCmDisconnect(id);
  }
}
