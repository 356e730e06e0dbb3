// The storage apparatus: the storage-side NIC (firmware instance 2 on its own card) and the
// storage controllers that share it (issue 3 items 6-8). Per round: one rdmaPoll crossing
// (receive path, RC engine, CM timers and the NIC's round: commands distributed, events
// written, WQEs fetched), newly established NVMe-oF connections bound to controllers, every
// controller's step (commands and events in, WQEs out, its doorbell), then one nicPoll when a
// controller wrote WQEs, so they leave in the same round.
import type { Card } from "../card.js";
import type { BlockBackend } from "../backends/types.js";
import * as M from "../../assembly/memmap.js";
import * as N from "../../assembly/nic/defs.js";
import * as CW from "../../assembly/rdma/cm-wire.js";
import { StorageController, type ControllerStats } from "./controller.js";
import { Subsystem } from "./subsystem.js";

export interface StorageNicOptions {
  /** Storage controllers sharing the NIC (default 2, at most NIC_MAX_CTRLS). */
  controllers?: number;
  /** Tail fast path: after a TAIL / SINGLE packet the NIC sends the response next (default on). */
  fastPath?: boolean;
  /** The NIC checks PI on data packets that carry it (default on). */
  difCheck?: boolean;
  /** End-to-end protection of the namespaces: 8-byte PI per block, Type 1 (default off). */
  protection?: boolean;
  /** Must match the backends' block size when given. */
  blockSize?: 512 | 4096;
  subnqn?: string;
  /** Frames / WQEs per firmware poll (default 256). */
  budget?: number;
}

export interface StorageNicStats { controllers: ControllerStats[]; bound: number; bindErrors: number }

/** A connection bound to a controller. */
interface Bound { id: number; commId: number; qpn: number; qid: number; k: number }

export class StorageNic {
  readonly controllers: StorageController[];
  readonly subsystem: Subsystem;
  readonly stageKeys: number[];
  private readonly bound: (Bound | undefined)[] = new Array(M.CM_MAX_CONNS).fill(undefined); // by CM connection id
  private nbound = 0;
  private readonly budget: number;
  private adminNext = 0;
  private ioNext = 0;
  private bindErrors = 0;
  private flags: number;

  /** The NIC on `card` (its own card: nicInit clears the NIC state) with one namespace per backend (NSID 1..n). */
  constructor(readonly card: Card, backends: BlockBackend | readonly BlockBackend[], o: StorageNicOptions = {}) {
    const n = o.controllers ?? 2;
    if (!Number.isInteger(n) || n < 1 || n > M.NIC_MAX_CTRLS) throw new RangeError(`storage NIC: ${n} controllers, want 1..${M.NIC_MAX_CTRLS}`);
    this.subsystem = new Subsystem(backends, { subnqn: o.subnqn, protection: o.protection });
    for (const ns of this.subsystem.namespaces) {
      if (o.blockSize !== undefined && o.blockSize !== ns.blockSize) throw new RangeError(`storage NIC: block size ${o.blockSize} but namespace ${ns.nsid} has ${ns.blockSize}`);
    }
    this.budget = o.budget ?? 256;
    this.flags = (o.fastPath ?? true ? N.NGF_TAIL_FAST_PATH : 0) | (o.difCheck ?? true ? N.NGF_DIF_CHECK : 0);
    const fw = card.fw;
    if (fw.nicInit(this.flags) !== 0) throw new Error("storage NIC: nicInit refused (see the card's err_bad_config)");
    this.stageKeys = [];
    this.controllers = [];
    for (let k = 0; k < n; k++) {
      const key = fw.nicCtrlEnable(k);
      if (key === 0) throw new Error(`storage NIC: nicCtrlEnable(${k}) refused`);
      this.stageKeys.push(key);
      this.controllers.push(new StorageController(k, card, this.subsystem, { difCheck: o.difCheck ?? true }));
    }
  }

  /** Accept NVMe-oF connections on an RDMA IP CM port; the listener id. */
  listen(port = CW.NVME_RDMA_PORT): number {
    const id = this.card.fw.rdmaCmListen(port);
    if (id === CW.CM_NONE) {
      const ready = this.card.dv.getUint32(M.CM_CTRL + CW.CMC_READY, true) !== 0;
      throw new Error(`storage NIC: cannot listen on port ${port}: ${ready ? "no free RDMA-CM connection slot" : "the card's RDMA-CM is not set up (call rdmaCmInit first)"}`);
    }
    return id;
  }

  /** Tail fast path on or off at run time (the NIC's NGF_TAIL_FAST_PATH). */
  setFastPath(on: boolean): void {
    this.flags = on ? this.flags | N.NGF_TAIL_FAST_PATH : this.flags & ~N.NGF_TAIL_FAST_PATH;
    this.card.fw.nicSetFlags(this.flags);
  }

  /** One round at virtual time now (ns). Returns the work done (0: idle). */
  step(now: number): number {
    const fw = this.card.fw;
    this.card.now = now;
    let work = fw.rdmaPoll(this.budget, now);
    this.bindNew();
    let wqes = 0;
    for (const c of this.controllers) wqes += c.step();
    if (wqes > 0) work += fw.nicPoll(this.budget, now) + wqes;
    return work;
  }

  /** Commands the controllers hold (taken from their rings, not yet answered and acknowledged). */
  inFlight(): number { return this.controllers.reduce((n, c) => n + c.inFlight(), 0); }

  /** Earliest RC retransmission timer or RNR wait end on the NIC card (virtual ns), +Infinity when none runs. */
  nextDeadline(): number { return this.card.fw.rdmaRcNextDeadline(); }

  /** Fault hook: corrupt block lba of namespace nsid in its backend without fixing its PI (see StorageController.corrupt). */
  corrupt(lba: number, byte = 0, nsid = 1): void { this.controllers[0]!.corrupt(lba, byte, nsid); }

  /** Fault hook: block lba's PI names another LBA (see StorageController.misdirect). */
  misdirect(lba: number, nsid = 1): void { this.controllers[0]!.misdirect(lba, nsid); }

  /** Which controller serves each bound connection (by CM connection id). */
  bindings(): { id: number; qpn: number; qid: number; controller: number }[] {
    return this.bound.filter((b) => b !== undefined).map((b) => ({ id: b.id, qpn: b.qpn, qid: b.qid, controller: b.k }));
  }

  stats(): StorageNicStats {
    return { controllers: this.controllers.map((c) => c.stats()), bound: this.nbound, bindErrors: this.bindErrors };
  }

  /**
   * Bind the QPs of connections that became ESTABLISHED (passive side: ours) to controllers:
   * admin queues round-robin, I/O queues round-robin, each in connection-table order, so the
   * same run binds the same way. A connection that left ESTABLISHED is unbound.
   */
  private bindNew(): void {
    const dv = this.card.dv;
    for (let id = 0; id < M.CM_MAX_CONNS; id++) {
      const a = M.CM_CONN_BASE + id * M.CM_CONN_SIZE;
      const b = this.bound[id];
      const live = dv.getUint32(a + CW.CN_STATE, true) === CW.CmState.ESTABLISHED && dv.getUint32(a + CW.CN_ROLE, true) === CW.CmRole.PASSIVE;
      if (!live && !b) continue; // the common case: a free or unrelated slot
      const commId = dv.getUint32(a + CW.CN_LOCAL_COMM_ID, true);
      if (b && (!live || b.commId !== commId)) this.unbind(b);
      if (!live || (b && b.commId === commId)) continue;
      const qpn = dv.getUint32(a + CW.CN_LOCAL_QPN, true), qid = dv.getUint32(a + CW.CN_QID, true);
      const n = this.controllers.length;
      const k = qid === 0 ? this.adminNext % n : this.ioNext % n;
      if (this.card.fw.nicBindQp(qpn, k) !== 0) { this.bindErrors++; continue; } // retried next round
      if (qid === 0) this.adminNext++;
      else this.ioNext++;
      this.controllers[k]!.bindQp(qpn, dv.getUint32(a + CW.CN_MTU, true));
      this.bound[id] = { id, commId, qpn, qid, k };
      this.nbound++;
    }
  }

  private unbind(b: Bound): void {
    this.card.fw.nicBindQp(b.qpn, N.NIC_NO_CTRL);
    this.controllers[b.k]!.unbindQp(b.qpn);
    this.bound[b.id] = undefined;
    this.nbound--;
  }
}
