// A storage controller behind the storage-side NIC (issue 3 items 5, 7, 8): it takes the
// command capsules the NIC put in its command ring, executes them against the namespace's
// backend and answers through NIC WQEs in its send queue, with data and PI in its staging
// window (layouts: assembly/nic/defs.ts; regions: memmap NIC_*). One step() per round: every
// new command entry, then every new event, then all the WQEs that can be written, CB_SQ_TAIL
// moved once and one doorbell. Plain TypeScript over the card's memory (runs in a browser too).
//
// A command walks one state enum (CmdState, moved only by `move`):
//   FREE → WAIT_STAGE (queued until its staging region is allocated)
//        → FETCH (host data to RDMA READ) → FETCHING (READ WQE posted) → EXECUTE (READ_DONE)
//        → EXECUTE (no host data, or in-capsule data copied to staging)
//   EXECUTE → RESPONDING (data WQEs + signaled RESPONSE posted) → FREE (SENT, or ERROR)
import type { Card } from "../card.js";
import type { BlockBackend } from "../backends/types.js";
import * as M from "../../assembly/memmap.js";
import * as N from "../../assembly/nic/defs.js";
import * as S from "../../assembly/nvme/spec.js";
import * as F from "../../assembly/nvmeof/defs.js";
import * as D from "./defs.js";
import { StageAllocator } from "./staging.js";
import { Subsystem, type Association, type Namespace } from "./subsystem.js";
import { executeAdmin, executeFabrics, executeIo, type Exec } from "./commands.js";

export interface ControllerOptions {
  /** Block size of the namespaces (default: the backends'; must match them). */
  blockSize?: 512 | 4096;
  /** End-to-end protection: 8-byte PI per block, Type 1 (default off). */
  protection?: boolean;
  /** Subsystem NQN a Connect must name (default DEFAULT_SUBNQN). */
  subnqn?: string;
  /** Path MTU of QPs not bound through bindQp (default 4096). */
  mtu?: number;
  /**
   * PI is checked on reads (default on). The NIC checks data packets of whole blocks; with a
   * path MTU below the block size the controller checks before sending. Off: neither (the
   * NIC's NGF_DIF_CHECK switch is the StorageNic's to set).
   */
  difCheck?: boolean;
  /** Ring the NIC's doorbell for controller k (default: the firmware's nicDoorbell(k)). */
  doorbell?: (k: number) => void;
}

export enum CmdState { FREE = 0, WAIT_STAGE = 1, FETCH = 2, FETCHING = 3, EXECUTE = 4, RESPONDING = 5 }
const NEXT: readonly (readonly CmdState[])[] = [
  [CmdState.WAIT_STAGE], // FREE
  [CmdState.FETCH, CmdState.EXECUTE], // WAIT_STAGE
  [CmdState.FETCHING], // FETCH
  [CmdState.EXECUTE], // FETCHING
  [CmdState.RESPONDING], // EXECUTE
  [CmdState.FREE], // RESPONDING
];

/** Direction of a command's data: none, host → controller (RDMA READ or in-capsule), controller → host (RDMA WRITE). */
export enum Dir { NONE = 0, H2C = 1, C2H = 2 }

// NW_TAG = role << 30 | generation << 16 | command slot: an event names its command and WQE.
const ROLE_DATA = 0, ROLE_READ = 1, ROLE_RESP = 2;
const TAG_SLOT_MASK = 0xffff, TAG_GEN_SHIFT = 16, TAG_GEN_MASK = 0x3fff, TAG_ROLE_SHIFT = 30;
const MAX_CMDS = 1 << 16;
// Signaled WQEs (READ, RESPONSE) outstanding at most: each comes back as one event; the other
// half of the event ring is left for the ERROR events of failed unsignaled data WQEs.
const EVENT_BUDGET = M.NIC_EVT_DEPTH / 2;


/** A target QP as this controller sees it: which queue of which association it is. */
export interface QpCtx {
  readonly qpn: number;
  mtu: number;
  qid: number; // -1 until a Connect succeeded on it
  assoc: Association | null;
  sqsize: number; // entries (Connect SQSIZE + 1)
  sqhd: number; // commands taken, mod sqsize
  sqhdOff: boolean; // CATTR: SQ flow control disabled
}

/** One command in flight (pooled; `gen` tells a late event from a reused slot). */
export class Cmd {
  state = CmdState.FREE;
  gen = 0;
  readonly sqe = new Uint8Array(S.SQE_SIZE);
  private view: DataView | undefined;
  /** The SQE as a DataView (made on first use: a snapshot restores the bytes, not the view). */
  get dv(): DataView { return (this.view ??= new DataView(this.sqe.buffer, this.sqe.byteOffset, this.sqe.byteLength)); }
  inline: Uint8Array | null = null; // in-capsule data, copied out of the receive buffer
  inlineLen = 0;
  qp!: QpCtx;
  cid = 0;
  opc = 0;
  sqhd = 0;
  dir = Dir.NONE;
  xfer = 0; // data bytes
  raddr = 0n;
  rkey = 0;
  piBytes = 0;
  status = 0; // NVMe status field (15 bits); non-zero from parse means: just respond
  dw0 = 0;
  dw1 = 0;
  stage = -1; // staging offset of [data | PI | CQE]
  stageLen = 0;
  sendLen = 0; // C2H bytes to send after execution
  ns: Namespace | null = null; // I/O commands: the namespace named by NSID
  lba = 0; // Read/Write: SLBA, for the PI reference tags
  dataError = false;
  conn = 0; // the command entry's CMD_RECV_SLOT: its connector entry, named in every WQE (NW_CONN)
  redelivered = false; // taken over from a lost controller (CMDF_REDELIVERED)
  replayed = false; // a redelivered Connect that had already succeeded: answered from the association
  constructor(readonly slot: number) {}
  get dataOff(): number { return this.stage; }
  get piOff(): number { return this.stage + this.xfer; }
  get cqeOff(): number { return this.stage + this.xfer + this.piBytes; }
}

class Fifo<T> {
  private a: T[] = [];
  private h = 0;
  get length(): number { return this.a.length - this.h; }
  push(x: T): void { this.a.push(x); }
  peek(): T | undefined { return this.a[this.h]; }
  shift(): T | undefined {
    const x = this.a[this.h++];
    if (this.h > 1024 && this.h * 2 > this.a.length) { this.a = this.a.slice(this.h); this.h = 0; }
    return x;
  }
}

export interface ControllerStats {
  k: number;
  commands: Record<string, number>;
  errors: Record<string, number>;
  bytesRead: number; // from the backend to hosts
  bytesWritten: number; // from hosts to the backend
  wqes: number;
  doorbells: number;
  events: number;
  inFlight: number;
  waiting: number;
  stageInUse: number;
}

export class StorageController {
  readonly sub: Subsystem;
  readonly stage: StageAllocator;
  readonly base: number; // control block
  readonly stageBase: number; // staging window (card offset)
  private readonly u8: Uint8Array;
  private readonly dv: DataView;
  private readonly qps: Map<number, QpCtx>; // the subsystem's: shared with the controller that may take a QP over
  private readonly cmds: Cmd[] = [];
  private readonly freeSlots: number[] = [];
  private readonly waiting = new Fifo<Cmd>(); // WAIT_STAGE
  private readonly ready = new Fifo<Cmd>(); // FETCH / EXECUTE: hold staging, need send queue room
  private readonly ring: (k: number) => void;
  private readonly defaultMtu: number;
  private readonly difCheck: boolean;
  private readonly exec: Exec; // one execution context, reused (no allocation per command)
  private sqTail: number;
  private written = 0; // WQEs written this step
  private signaled = 0; // READ and RESPONSE WQEs whose event has not come back
  private readonly st = { commands: {} as Record<string, number>, errors: {} as Record<string, number>, bytesRead: 0, bytesWritten: 0, wqes: 0, doorbells: 0, events: 0 };

  /**
   * Controller k of the NIC on `card`, serving a subsystem shared with other controllers, or a
   * subsystem of its own over `storage` (one namespace per backend, NSID 1..n).
   */
  constructor(readonly k: number, readonly card: Card, storage: Subsystem | BlockBackend | readonly BlockBackend[], o: ControllerOptions = {}) {
    if (!Number.isInteger(k) || k < 0 || k >= M.NIC_MAX_CTRLS) throw new RangeError(`controller: k ${k} outside 0..${M.NIC_MAX_CTRLS - 1}`);
    this.sub = storage instanceof Subsystem ? storage : new Subsystem(storage, { subnqn: o.subnqn, protection: o.protection });
    for (const ns of this.sub.namespaces) {
      if (o.blockSize !== undefined && o.blockSize !== ns.blockSize) throw new RangeError(`controller: block size ${o.blockSize} but namespace ${ns.nsid} has ${ns.blockSize}`);
    }
    this.qps = this.sub.qps;
    this.u8 = card.u8;
    this.dv = card.dv;
    this.base = M.NIC_CTRLS + k * M.NIC_CTRL_SIZE;
    this.stageBase = M.NIC_STAGE_BASE + k * M.NIC_STAGE_SIZE;
    // The last block of the window is scratch for corrupt() (PI of a block never read yet).
    this.stage = new StageAllocator(M.NIC_STAGE_SIZE - this.sub.maxBlockSize);
    this.defaultMtu = o.mtu ?? 4096;
    this.difCheck = o.difCheck ?? true;
    this.ring = o.doorbell ?? ((kk) => card.fw.nicDoorbell(kk));
    this.sqTail = this.u32(this.base + N.CB_SQ_TAIL);
    this.exec = { c: new Cmd(-1), sub: this.sub, u8: this.u8, dv: this.dv, stageBase: this.stageBase, guard: (p, n) => this.guard(p, n), guards: (p, bs, n, out, stride) => this.card.fw.crc16T10DifBlocks(p, bs, n, out, stride), difCheck: this.difCheck, status: 0, reason: "" };
  }

  /** QP qpn is served here with path MTU mtu (bytes, as the CM negotiated it). */
  bindQp(qpn: number, mtu: number): void {
    if (![256, 512, 1024, 2048, 4096].includes(mtu)) throw new RangeError(`controller: path MTU ${mtu}`);
    const q = this.qps.get(qpn);
    if (q) q.mtu = mtu;
    else this.qps.set(qpn, newQp(qpn, mtu));
  }

  /**
   * QP qpn's connection ended: its queue leaves its association (an admin queue ends the
   * association). Commands in flight keep their context and complete or fail through events.
   */
  unbindQp(qpn: number): void {
    const q = this.qps.get(qpn);
    if (!q) return;
    this.qps.delete(qpn);
    if (!q.assoc) return;
    if (q.qid === 0) this.sub.assocs.delete(q.assoc.cntlid);
    else q.assoc.ioQueues.delete(q.qid);
  }

  /** One round: commands in, events in, WQEs out, one doorbell. Returns the WQEs written. */
  step(): number {
    this.written = 0;
    // The heartbeat the NIC watches: a controller that stops stepping is declared lost.
    this.dv.setUint32(this.base + N.CB_HEARTBEAT, (this.u32(this.base + N.CB_HEARTBEAT) + 1) >>> 0, true);
    this.takeCommands();
    this.takeEvents();
    this.drive();
    if (this.written > 0) {
      this.dv.setUint32(this.base + N.CB_SQ_TAIL, this.sqTail, true);
      this.ring(this.k);
      this.st.doorbells++;
    }
    return this.written;
  }

  /** Commands taken and not yet answered-and-acknowledged. */
  inFlight(): number { return this.cmds.length - this.freeSlots.length; }

  /**
   * Fault hook: flip one byte of block lba in the backend without fixing its PI, so the next
   * read of it fails the NIC's guard check (protection on). The PI it had is kept first.
   */
  corrupt(lba: number, byte = 0, nsid = 1): void {
    const { ns, block } = this.faultBlock("corrupt", lba, nsid);
    block[byte % ns.blockSize] ^= 0x5a;
    ns.backend.write(lba, block);
  }

  /**
   * Fault hook: block lba's PI names another LBA (lba + 1), as after a misdirected write: data and
   * guard stay good, the reference tag check fails (SCT 2h / SC 84h). Needs protection on.
   */
  misdirect(lba: number, nsid = 1): void {
    const { ns } = this.faultBlock("misdirect", lba, nsid);
    if (!ns.pi) throw new Error(`misdirect: namespace ${nsid} has no protection information`);
    const pi = ns.pi.get(lba);
    ns.pi.set(lba, pi.guard, pi.appTag, (lba + 1) >>> 0);
  }

  /** Block lba of namespace nsid read into the scratch block, its PI kept first (fault hooks). */
  private faultBlock(what: string, lba: number, nsid: number): { ns: Namespace; block: Uint8Array } {
    const ns = this.sub.ns(nsid);
    if (!ns) throw new RangeError(`${what}: no namespace ${nsid}`);
    if (!Number.isInteger(lba) || lba < 0 || lba >= ns.blocks) throw new RangeError(`${what}: lba ${lba} outside namespace ${nsid}`);
    const scratch = this.stageBase + M.NIC_STAGE_SIZE - this.sub.maxBlockSize;
    const block = this.u8.subarray(scratch, scratch + ns.blockSize);
    ns.backend.read(lba, block);
    if (ns.pi && !ns.pi.has(lba)) ns.pi.set(lba, this.guard(scratch, ns.blockSize), 0, lba >>> 0);
    return { ns, block };
  }

  stats(): ControllerStats {
    return {
      k: this.k, commands: { ...this.st.commands }, errors: { ...this.st.errors }, bytesRead: this.st.bytesRead,
      bytesWritten: this.st.bytesWritten, wqes: this.st.wqes, doorbells: this.st.doorbells, events: this.st.events,
      inFlight: this.inFlight(), waiting: this.waiting.length, stageInUse: this.stage.inUse,
    };
  }

  // ---- command ring ----

  private takeCommands(): void {
    const prod = this.u32(this.base + N.CB_CMD_PROD);
    let cons = this.u32(this.base + N.CB_CMD_CONS);
    if (((prod - cons) >>> 0) > M.NIC_CMD_DEPTH) { this.err("bad_ring_index"); return; }
    for (; cons !== prod; cons = (cons + 1) >>> 0) this.takeOne(this.base + N.NC_CMD + (cons % M.NIC_CMD_DEPTH) * N.CMD_SIZE);
    this.dv.setUint32(this.base + N.CB_CMD_CONS, cons, true);
  }

  /** Copy one capsule out of its receive buffer (it goes back to the QP) and parse it. */
  private takeOne(e: number): void {
    const qpn = this.u32(e + N.CMD_QPN), cap = this.u32(e + N.CMD_CAPSULE), len = this.u32(e + N.CMD_LEN);
    // The entry is NIC memory the host cannot write, but a wrong one must not make us read elsewhere.
    const slot = Math.floor((cap - M.NIC_RECV_BASE) / M.NIC_RECV_SLOT);
    if (qpn >= M.MAX_QPS || cap < M.NIC_RECV_BASE || cap !== M.NIC_RECV_BASE + slot * M.NIC_RECV_SLOT
      || slot >= M.NIC_MAX_QPS * M.NIC_RECV_DEPTH || len > M.NIC_RECV_SLOT) { this.err("bad_command_entry"); return; }
    const c = this.alloc();
    if (!c) { this.err("too_many_commands"); return; }
    let q = this.qps.get(qpn);
    if (!q) { q = newQp(qpn, this.defaultMtu); this.qps.set(qpn, q); }
    c.qp = q;
    c.conn = this.u32(e + N.CMD_RECV_SLOT);
    c.redelivered = (this.u32(e + N.CMD_FLAGS) & N.CMDF_REDELIVERED) !== 0;
    c.sqe.set(this.u8.subarray(cap, cap + S.SQE_SIZE));
    c.cid = c.dv.getUint16(S.SQE_CID, true);
    c.opc = c.sqe[0]!;
    // A re-delivered command was counted in the SQ head when it first arrived.
    if (q.qid >= 0 && !q.sqhdOff && !c.redelivered) q.sqhd = (q.sqhd + 1) % q.sqsize;
    c.sqhd = q.sqhdOff ? 0xffff : q.sqhd;
    this.countCmd(c);
    if (len < S.SQE_SIZE) this.fail(c, S.S_INVALID_FIELD, "short_capsule");
    else this.parse(c, cap, len);
    this.move(c, CmdState.WAIT_STAGE);
    this.waiting.push(c);
  }

  /** Direction, length and data descriptor of a command; an error status ends it at once. */
  private parse(c: Cmd, cap: number, len: number): void {
    const cdw0 = c.dv.getUint32(S.SQE_CDW0, true);
    if (((cdw0 >>> S.CDW0_FUSE_SHIFT) & S.CDW0_FUSE_MASK) !== 0) return this.fail(c, S.S_INVALID_FIELD, "fused");
    if (!this.transfer(c) || c.dir === Dir.NONE) return;
    if (((cdw0 >>> S.CDW0_PSDT_SHIFT) & S.CDW0_PSDT_MASK) !== F.CDW0_PSDT_SGL >>> S.CDW0_PSDT_SHIFT) return this.fail(c, S.S_INVALID_FIELD, "psdt");
    const sgl = F.SQE_SGL1, id = c.sqe[sgl + F.SGL_ID]!;
    if (id === F.SGL_ID_KEYED || id === F.SGL_ID_KEYED_INV) {
      const n = c.sqe[sgl + F.SGL_KEYED_LEN]! | (c.sqe[sgl + F.SGL_KEYED_LEN + 1]! << 8) | (c.sqe[sgl + F.SGL_KEYED_LEN + 2]! << 16);
      if (n !== c.xfer) return this.fail(c, D.S_DATA_SGL_LENGTH_INVALID, "sgl_length");
      c.raddr = c.dv.getBigUint64(sgl + F.SGL_ADDR, true);
      c.rkey = c.dv.getUint32(sgl + F.SGL_KEYED_KEY, true);
      return;
    }
    if (id !== F.SGL_ID_INCAPSULE) return this.fail(c, D.S_SGL_TYPE_INVALID, "sgl_type");
    if (c.dir !== Dir.H2C) return this.fail(c, S.S_INVALID_FIELD, "incapsule_read");
    const off = c.dv.getBigUint64(sgl + F.SGL_ADDR, true), n = c.dv.getUint32(sgl + F.SGL_LEN, true);
    const avail = Math.min(len, F.CAPSULE_DATA_OFF + F.INCAPSULE_MAX) - F.CAPSULE_DATA_OFF;
    if (off > BigInt(Math.max(avail, 0)) || Number(off) + n > avail) return this.fail(c, D.S_SGL_OFFSET_INVALID, "sgl_offset");
    if (n !== c.xfer) return this.fail(c, D.S_DATA_SGL_LENGTH_INVALID, "sgl_length");
    c.inline ??= new Uint8Array(F.INCAPSULE_MAX);
    const from = cap + F.CAPSULE_DATA_OFF + Number(off);
    c.inline.set(this.u8.subarray(from, from + n));
    c.inlineLen = n;
  }

  /**
   * What a command moves (by opcode and queue) into c.dir / c.xfer / c.piBytes, checked against
   * MDTS; false with c failed on an error that does not depend on the SGL.
   */
  private transfer(c: Cmd): boolean {
    const q = c.qp, opc = c.opc;
    if (opc === F.OPC_FABRICS) {
      const t = c.sqe[F.FAB_FCTYPE]!;
      if (t === F.FCTYPE_CONNECT && q.qid >= 0 && c.redelivered && q.assoc) {
        // The lost controller had connected the queue; its response never left: answer it again.
        c.replayed = true;
        c.dw0 = q.assoc.cntlid;
        return this.ok(c, Dir.NONE, 0);
      }
      if (t === F.FCTYPE_CONNECT) return q.qid >= 0 ? this.no(c, F.S_CONNECT_CONTROLLER_BUSY | S.ST_DNR, "connect_again") : this.ok(c, Dir.H2C, F.CONN_DATA_SIZE);
      if (q.qid < 0) return this.no(c, D.S_CMD_SEQUENCE_ERROR, "not_connected");
      if (q.qid !== 0 || (t !== F.FCTYPE_PROPERTY_GET && t !== F.FCTYPE_PROPERTY_SET)) return this.no(c, S.S_INVALID_OPCODE, "invalid_opcode");
      return this.ok(c, Dir.NONE, 0);
    }
    if (q.qid < 0) return this.no(c, D.S_CMD_SEQUENCE_ERROR, "not_connected");
    const a = q.assoc!;
    if ((a.cc & 1) === 0 || (a.csts & 1) === 0) return this.no(c, D.S_CMD_SEQUENCE_ERROR, "not_enabled");
    if (q.qid === 0) {
      if (opc === S.ADM_IDENTIFY) return this.ok(c, Dir.C2H, S.IDENTIFY_SIZE);
      if (opc === S.ADM_GET_FEATURES || opc === S.ADM_SET_FEATURES || opc === D.ADM_KEEP_ALIVE) return this.ok(c, Dir.NONE, 0);
      return this.no(c, S.S_INVALID_OPCODE, "invalid_opcode");
    }
    if (opc !== S.IO_READ && opc !== S.IO_WRITE && opc !== S.IO_WRITE_ZEROES && opc !== S.IO_FLUSH && opc !== S.IO_DSM) return this.no(c, S.S_INVALID_OPCODE, "invalid_opcode");
    const nsid = c.dv.getUint32(S.SQE_NSID, true);
    const ns = this.sub.ns(nsid);
    if (opc === S.IO_FLUSH && nsid === S.NSID_BROADCAST) return this.ok(c, Dir.NONE, 0); // every namespace
    if (!ns) return this.no(c, S.S_INVALID_NAMESPACE, "invalid_namespace");
    c.ns = ns;
    if (opc === S.IO_FLUSH) return this.ok(c, Dir.NONE, 0);
    if (opc === S.IO_DSM) return this.ok(c, Dir.H2C, ((c.dv.getUint32(S.SQE_CDW10, true) & S.DSM_NR_MASK) + 1) * S.DSM_RANGE_SIZE);
    // SLBA is 64 bits: as two halves, so no BigInt per command; beyond 2^53 it is out of range anyway.
    const lba = c.dv.getUint32(D.CDW10_SLBA_LO, true) + c.dv.getUint32(D.CDW10_SLBA_LO + 4, true) * 2 ** 32;
    const nlb = (c.dv.getUint32(S.SQE_CDW12, true) & D.NLB_MASK) + 1;
    if (lba + nlb > ns.blocks) return this.no(c, S.S_LBA_OUT_OF_RANGE, "lba_range");
    c.lba = lba;
    if (opc === S.IO_WRITE_ZEROES) return this.ok(c, Dir.NONE, 0);
    const bytes = nlb * ns.blockSize;
    if (bytes > D.MAX_XFER) return this.no(c, S.S_INVALID_FIELD, "too_large");
    return this.ok(c, opc === S.IO_READ ? Dir.C2H : Dir.H2C, bytes, ns.pi ? nlb * F.PI_SIZE : 0);
  }

  private ok(c: Cmd, dir: Dir, bytes: number, pi = 0): true { c.dir = dir; c.xfer = bytes; c.piBytes = pi; return true; }
  private no(c: Cmd, status: number, reason: string): false { this.fail(c, status, reason); return false; }

  // ---- event ring ----

  private takeEvents(): void {
    const prod = this.u32(this.base + N.CB_EVT_PROD);
    let cons = this.u32(this.base + N.CB_EVT_CONS);
    if (((prod - cons) >>> 0) > M.NIC_EVT_DEPTH) { this.err("bad_ring_index"); return; }
    for (; cons !== prod; cons = (cons + 1) >>> 0) {
      const e = this.base + N.NC_EVT + (cons % M.NIC_EVT_DEPTH) * N.EV_SIZE;
      this.onEvent(this.u32(e + N.EV_TAG), this.u32(e + N.EV_KIND), this.u32(e + N.EV_STATUS));
      this.st.events++;
    }
    this.dv.setUint32(this.base + N.CB_EVT_CONS, cons, true);
  }

  private onEvent(tag: number, kind: number, status: number): void {
    const c = this.cmds[tag & TAG_SLOT_MASK];
    const role = tag >>> TAG_ROLE_SHIFT;
    if (!c || c.state === CmdState.FREE || c.gen !== ((tag >>> TAG_GEN_SHIFT) & TAG_GEN_MASK)) { this.err("stale_event"); return; }
    if (kind === N.EvKind.DIF_ERROR) { this.err(status === F.S_E2E_REFTAG_ERROR ? "dif_reftag" : "dif_guard"); return; }
    if (kind === N.EvKind.READ_DONE && role === ROLE_READ && c.state === CmdState.FETCHING) {
      this.signaled--;
      this.move(c, CmdState.EXECUTE);
      this.ready.push(c);
    } else if (kind === N.EvKind.SENT && role === ROLE_RESP && c.state === CmdState.RESPONDING) {
      // A data packet failed but its (already queued) response said success: make it visible.
      if (c.dataError && c.status === 0) this.err("response_after_failed_data");
      this.finish(c);
    } else if (kind === N.EvKind.ERROR) {
      this.err(role === ROLE_READ ? "read_failed" : role === ROLE_RESP ? "response_failed" : "data_failed");
      if (role === ROLE_READ && c.state === CmdState.FETCHING) {
        this.signaled--;
        c.status = S.S_DATA_TRANSFER_ERROR;
        this.move(c, CmdState.EXECUTE);
        this.ready.push(c);
      } else if (role === ROLE_RESP && c.state === CmdState.RESPONDING) this.finish(c);
      else c.dataError = true; // the RESPONSE behind it still completes (SENT or ERROR)
    } else this.err("unexpected_event");
  }

  // ---- scheduling: staging, then send queue room ----

  private drive(): void {
    // Commands holding staging first: they free it; a command waiting for staging never blocks them.
    for (let c = this.ready.peek(); c; c = this.ready.peek()) {
      if (!this.advance(c)) break;
      this.ready.shift();
    }
    for (let c = this.waiting.peek(); c; c = this.waiting.peek()) {
      if (!this.place(c)) break;
      this.waiting.shift();
      if (this.advance(c)) continue;
      this.ready.push(c);
      // A command taken over from a lost controller may continue an RDMA WRITE message on its
      // QP: nothing behind it may get a WQE in first (the NIC would refuse it).
      if (c.redelivered) break;
    }
  }

  /** Give c its staging region; false when the window has no room yet (c keeps its place). */
  private place(c: Cmd): boolean {
    const need = (c.status === 0 ? c.xfer + c.piBytes : 0) + S.CQE_SIZE;
    if (need > this.stage.size) { this.fail(c, S.S_INVALID_FIELD, "too_large"); return this.place(c); }
    const off = this.stage.alloc(need);
    if (off < 0) { this.err("stage_full_waits"); return false; }
    if (c.status !== 0) { c.xfer = 0; c.piBytes = 0; }
    c.stage = off;
    c.stageLen = need;
    if (c.status === 0 && c.dir === Dir.H2C && c.inlineLen === 0) { this.move(c, CmdState.FETCH); return true; }
    if (c.status === 0 && c.dir === Dir.H2C) this.u8.set(c.inline!.subarray(0, c.inlineLen), this.stageBase + c.dataOff);
    this.move(c, CmdState.EXECUTE);
    return true;
  }

  /** Post what c needs next (its READ, or its data and response); false when the send queue is short. */
  private advance(c: Cmd): boolean {
    if (this.signaled >= EVENT_BUDGET) { this.err("event_budget_waits"); return false; }
    if (c.state === CmdState.FETCH) {
      if (this.sqRoom() < 1) return this.sqShort();
      this.wqe(N.NicWqeType.READ, 0, c, c.dataOff, c.xfer, c.xfer, tag(c, ROLE_READ));
      this.signaled++;
      this.move(c, CmdState.FETCHING);
      return true;
    }
    const pkts = c.status === 0 && c.dir === Dir.C2H ? Math.ceil(c.xfer / c.qp.mtu) : 0;
    if (this.sqRoom() < pkts + 1) return this.sqShort();
    this.execute(c);
    if (c.status === 0 && c.sendLen > 0) this.sendData(c);
    this.respond(c);
    return true;
  }

  private sqShort(): false { this.err("sq_full_waits"); return false; }
  private sqRoom(): number { return M.NIC_SQ_DEPTH - ((this.sqTail - this.u32(this.base + N.CB_SQ_HEAD)) >>> 0); }

  // ---- execution ----

  private execute(c: Cmd): void {
    if (c.status !== 0 || c.replayed) return;
    const x = this.exec;
    x.c = c;
    x.status = 0;
    x.reason = "";
    try {
      if (c.opc === F.OPC_FABRICS) executeFabrics(x);
      else if (c.qp.qid === 0) executeAdmin(x);
      else executeIo(x);
    } catch (e) {
      // A backend that fails (file I/O) or a bug must not escape step(): the host gets an error.
      x.status = S.S_INTERNAL_ERROR;
      x.reason = `exception: ${(e as Error).message ?? e}`.slice(0, 80);
    }
    if (x.status !== 0) this.fail(c, x.status, x.reason);
    else if (c.dir === Dir.C2H) { c.sendLen = c.xfer; if (c.opc === S.IO_READ) this.st.bytesRead += c.xfer; }
    else if (c.opc === S.IO_WRITE) this.st.bytesWritten += c.xfer;
  }

  /** The data WQEs of a controller → host transfer, cut at the QP's path MTU (RDMA WRITE FIRST..LAST / ONLY). */
  private sendData(c: Cmd): void {
    const mtu = c.qp.mtu, total = c.sendLen, bs = c.ns?.blockSize ?? 0;
    const dif = c.ns?.pi != null && c.opc === S.IO_READ;
    const t = tag(c, ROLE_DATA);
    for (let o = 0; o < total; o += mtu) {
      const len = Math.min(mtu, total - o);
      const type = total <= mtu ? N.NicWqeType.SINGLE : o === 0 ? N.NicWqeType.INITIAL : o + len === total ? N.NicWqeType.TAIL : N.NicWqeType.INTERMEDIATE;
      // The NIC checks whole blocks only; with a path MTU below the block size it checks nothing.
      const whole = dif && o % bs === 0 && len % bs === 0;
      const w = this.wqe(type, whole ? N.NWF_DIF : 0, c, c.dataOff + o, len, total, t);
      if (whole) {
        this.dv.setUint32(w + N.NW_PI_OFF, c.piOff + (o / bs) * F.PI_SIZE, true);
        this.dv.setUint32(w + N.NW_REFTAG, (c.lba + o / bs) >>> 0, true);
        this.dv.setUint32(w + N.NW_BLOCK, bs, true);
      }
    }
  }

  /** The response capsule: CQE in staging, then a signaled RESPONSE WQE (its SENT frees the staging). */
  private respond(c: Cmd): void {
    const p = this.stageBase + c.cqeOff, q = c.qp;
    const sqid = q.qid >= 0 ? q.qid : c.opc === F.OPC_FABRICS && c.sqe[F.FAB_FCTYPE] === F.FCTYPE_CONNECT ? c.dv.getUint16(F.CONN_QID, true) : 0;
    this.dv.setUint32(p + S.CQE_DW0, c.dw0 >>> 0, true);
    this.dv.setUint32(p + S.CQE_DW1, c.dw1 >>> 0, true);
    this.dv.setUint32(p + S.CQE_DW2, (c.sqhd & 0xffff) | (sqid << S.CQE_SQID_SHIFT), true);
    this.dv.setUint32(p + S.CQE_DW3, (c.cid | (c.status << S.CQE_STATUS_SHIFT)) >>> 0, true); // phase tag 0 on fabrics
    this.wqe(N.NicWqeType.RESPONSE, N.NWF_SIGNALED, c, c.cqeOff, N.NW_RESPONSE_LEN, N.NW_RESPONSE_LEN, tag(c, ROLE_RESP));
    this.signaled++;
    this.move(c, CmdState.RESPONDING);
  }

  /** Write one NIC WQE at the send queue tail; returns its card offset. */
  private wqe(type: N.NicWqeType, flags: number, c: Cmd, stageOff: number, len: number, total: number, t: number): number {
    const w = this.base + N.NC_SQ + (this.sqTail % M.NIC_SQ_DEPTH) * N.NW_SIZE, dv = this.dv;
    this.u8.fill(0, w, w + N.NW_SIZE);
    this.u8[w + N.NW_TYPE] = type;
    this.u8[w + N.NW_FLAGS] = flags;
    dv.setUint16(w + N.NW_CID, c.cid, true);
    dv.setUint32(w + N.NW_QPN, c.qp.qpn, true);
    dv.setUint32(w + N.NW_STAGE_OFF, stageOff, true);
    dv.setUint32(w + N.NW_LEN, len, true);
    if (type !== N.NicWqeType.RESPONSE) {
      dv.setBigUint64(w + N.NW_RADDR, c.raddr, true);
      dv.setUint32(w + N.NW_RKEY, c.rkey, true);
    }
    dv.setUint32(w + N.NW_TOTAL, total, true);
    dv.setUint32(w + N.NW_TAG, t, true);
    dv.setUint32(w + N.NW_CONN, c.conn, true);
    this.sqTail = (this.sqTail + 1) >>> 0;
    this.written++;
    this.st.wqes++;
    return w;
  }

  // ---- command slots and the one transition function ----

  private alloc(): Cmd | null {
    const s = this.freeSlots.pop();
    if (s !== undefined) return this.cmds[s]!;
    if (this.cmds.length >= MAX_CMDS) return null;
    const c = new Cmd(this.cmds.length);
    this.cmds.push(c);
    return c;
  }

  private move(c: Cmd, to: CmdState): void {
    if (!NEXT[c.state]!.includes(to)) throw new Error(`controller ${this.k}: command ${c.cid} ${CmdState[c.state]} → ${CmdState[to]}`);
    c.state = to;
  }

  private finish(c: Cmd): void {
    this.signaled--;
    this.stage.free(c.stage, c.stageLen);
    this.move(c, CmdState.FREE);
    c.gen = (c.gen + 1) & TAG_GEN_MASK;
    c.stage = -1; c.status = 0; c.dw0 = 0; c.dw1 = 0; c.xfer = 0; c.piBytes = 0; c.sendLen = 0; c.inlineLen = 0;
    c.dir = Dir.NONE; c.dataError = false; c.raddr = 0n; c.rkey = 0; c.ns = null; c.redelivered = false; c.replayed = false;
    this.freeSlots.push(c.slot);
  }

  private fail(c: Cmd, status: number, reason: string): void {
    c.status = status;
    this.err(reason);
  }

  private countCmd(c: Cmd): void {
    const name = opName(c);
    this.st.commands[name] = (this.st.commands[name] ?? 0) + 1;
  }

  private err(reason: string): void { this.st.errors[reason] = (this.st.errors[reason] ?? 0) + 1; }
  private u32(p: number): number { return this.dv.getUint32(p, true); }

  /** Guard of the n-byte block at card offset p: the firmware's CRC-16 T10-DIF (no second implementation). */
  private guard(p: number, n: number): number { return this.card.fw.crc16T10DifOf(p, n); }
}

function newQp(qpn: number, mtu: number): QpCtx {
  return { qpn, mtu, qid: -1, assoc: null, sqsize: 1, sqhd: 0, sqhdOff: false };
}

function tag(c: Cmd, role: number): number {
  return ((role << TAG_ROLE_SHIFT) | ((c.gen & TAG_GEN_MASK) << TAG_GEN_SHIFT) | c.slot) >>> 0;
}

const FABRICS_NAMES: Record<number, string> = { [F.FCTYPE_CONNECT]: "connect", [F.FCTYPE_PROPERTY_GET]: "property_get", [F.FCTYPE_PROPERTY_SET]: "property_set" };
const ADMIN_NAMES: Record<number, string> = { [S.ADM_IDENTIFY]: "identify", [S.ADM_GET_FEATURES]: "get_features", [S.ADM_SET_FEATURES]: "set_features", [D.ADM_KEEP_ALIVE]: "keep_alive" };
const IO_NAMES: Record<number, string> = { [S.IO_READ]: "read", [S.IO_WRITE]: "write", [S.IO_FLUSH]: "flush", [S.IO_WRITE_ZEROES]: "write_zeroes", [S.IO_DSM]: "dsm" };

const opNames = new Map<number, string>();

/** Stats key of a command: connect, identify, read, ... and for unknown ones admin_0x7e, io_0x7e, fabrics_0x05 (built once per kind). */
function opName(c: Cmd): string {
  const kind = c.qp.qid < 0 ? 0 : c.qp.qid === 0 ? 1 : 2;
  const key = (kind << 16) | (c.opc === F.OPC_FABRICS ? 0x100 | c.sqe[F.FAB_FCTYPE]! : c.opc);
  let name = opNames.get(key);
  if (name === undefined) { name = opNameOf(c); opNames.set(key, name); }
  return name;
}

function opNameOf(c: Cmd): string {
  const hex = (v: number) => `0x${v.toString(16).padStart(2, "0")}`;
  if (c.opc === F.OPC_FABRICS) return FABRICS_NAMES[c.sqe[F.FAB_FCTYPE]!] ?? `fabrics_${hex(c.sqe[F.FAB_FCTYPE]!)}`;
  if (c.qp.qid === 0) return ADMIN_NAMES[c.opc] ?? `admin_${hex(c.opc)}`;
  if (c.qp.qid > 0) return IO_NAMES[c.opc] ?? `io_${hex(c.opc)}`;
  return `unconnected_${hex(c.opc)}`;
}
