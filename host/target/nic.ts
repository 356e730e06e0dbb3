// The storage apparatus: the storage-side NIC (firmware instance 2 on its own card) and the
// storage controllers that share it (issue 3 items 6-8). Per round: one rdmaPoll crossing
// (receive path, RC engine, CM timers and the NIC's round: commands distributed, events
// written, WQEs fetched), newly established NVMe-oF connections bound to controllers, every
// controller's step (commands and events in, WQEs out, its doorbell), then one nicPoll when a
// controller wrote WQEs, so they leave in the same round.
//
// Controller loss (issue 4): linkDown(k) / linkUp(k) cut and restore the link between the NIC
// and controller k; crash(k) stops it (its state is lost; the NIC notices by its heartbeat) and
// restart(k) brings it back empty. mode "connectors": the NIC's shared connectors move k's QPs
// to a standby and re-deliver its in-flight commands (nic/connector.ts), the host notices
// nothing. mode "reconnect" (the baseline): the QPs bound to k are torn down (CM DREQ, QP in
// ERR) and the host must reconnect and resubmit. A controller whose link comes back starts
// empty too: what it held was taken over while it was away.
import type { Card } from "../card.js";
import type { BlockBackend } from "../backends/types.js";
import * as M from "../../assembly/memmap.js";
import * as N from "../../assembly/nic/defs.js";
import * as CW from "../../assembly/rdma/cm-wire.js";
import { StorageController, type ControllerStats } from "./controller.js";
import { Subsystem } from "./subsystem.js";

const QP_ERR = 4; // QpState.ERR (assembly/rdma/qp.ts holds firmware code tsc cannot compile)

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
  /** "connectors" (default): transparent failover; "reconnect": the baseline, a lost controller's QPs are disconnected. */
  mode?: "connectors" | "reconnect";
  /** Virtual ns without a controller step after which the NIC declares it lost (default 100 µs; 0: no detection). */
  heartbeatNs?: number;
  /** Shared connectors (default 1, at most NIC_MAX_CONNS); a QP's is hash(QPN) % n unless setConnector() says otherwise. */
  connectors?: number;
}

/** A controller's state as the NIC sees it changed (for traces: the testbed's "controller" events). */
export interface ControllerChange { at: number; controller: string; from: "up" | "lost"; to: "up" | "lost"; reason: "link-down" | "heartbeat" | "link-up" | "restart" }

/** A controller as failovers() reports it: its letter, the link, and whether the NIC serves it. */
export interface ControllerFailoverState { name: string; k: number; link: "up" | "down"; crashed: boolean; nic: "up" | "lost" | "off"; qps: number }
export interface FailoverStats {
  mode: "connectors" | "reconnect";
  /** Controllers declared lost (link down, heartbeat) whose QPs a standby took over. */
  takeovers: number;
  /** QPs that went back to their home controller. */
  failbacks: number;
  /** In-flight commands handed to a standby. */
  commandsMoved: number;
  /** Data packets the lost controller had sent, skipped when the standby produced them again. */
  packetsSkipped: number;
  /** Unfetched WQEs of lost controllers, discarded. */
  wqesDiscarded: number;
  /** Commands the connectors answered with Namespace Not Ready (no live controller). */
  errorResponses: number;
  /** Losses found by the heartbeat. */
  heartbeatLosses: number;
  /** Connections torn down because their controller was lost (reconnect mode). */
  disconnects: number;
  /** Capsules each connector took. */
  perConnector: number[];
  controllers: ControllerFailoverState[];
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
  readonly mode: "connectors" | "reconnect";
  private readonly link: boolean[] = [];
  private readonly crashed: boolean[] = [];
  private readonly lostSeen: boolean[] = [];
  private readonly reviving: boolean[] = []; // link back / restarted, waiting until the NIC no longer reads its old window
  private readonly ctrlOpts: { difCheck: boolean };
  private disconnects = 0;
  private readonly reviveWhy: ("link-up" | "restart")[] = [];
  /** Called when a controller is declared lost or comes back (virtual time `at`); set it only while someone listens. */
  onEvent: ((e: ControllerChange) => void) | undefined = undefined;

  /** The NIC on `card` (its own card: nicInit clears the NIC state) with one namespace per backend (NSID 1..n). */
  constructor(readonly card: Card, backends: BlockBackend | readonly BlockBackend[], o: StorageNicOptions = {}) {
    const n = o.controllers ?? 2;
    if (!Number.isInteger(n) || n < 1 || n > M.NIC_MAX_CTRLS) throw new RangeError(`storage NIC: ${n} controllers, want 1..${M.NIC_MAX_CTRLS}`);
    this.subsystem = new Subsystem(backends, { subnqn: o.subnqn, protection: o.protection });
    for (const ns of this.subsystem.namespaces) {
      if (o.blockSize !== undefined && o.blockSize !== ns.blockSize) throw new RangeError(`storage NIC: block size ${o.blockSize} but namespace ${ns.nsid} has ${ns.blockSize}`);
    }
    this.budget = o.budget ?? 256;
    this.mode = o.mode ?? "connectors";
    if (this.mode !== "connectors" && this.mode !== "reconnect") throw new RangeError(`storage NIC: mode ${String(this.mode)}, want connectors or reconnect`);
    this.flags = (o.fastPath ?? true ? N.NGF_TAIL_FAST_PATH : 0) | (o.difCheck ?? true ? N.NGF_DIF_CHECK : 0) | (this.mode === "connectors" ? N.NGF_CONNECTORS : 0);
    const fw = card.fw;
    if (fw.nicInit(this.flags) !== 0) throw new Error("storage NIC: nicInit refused (see the card's err_bad_config)");
    const hb = o.heartbeatNs ?? 100_000;
    if (!(hb >= 0)) throw new RangeError(`storage NIC: heartbeatNs ${hb}`);
    fw.nicSetHeartbeat(hb);
    if (fw.nicConnectors(o.connectors ?? 1) !== 0) throw new RangeError(`storage NIC: ${o.connectors} connectors, want 1..${N.NIC_MAX_CONNS}`);
    this.ctrlOpts = { difCheck: o.difCheck ?? true };
    this.stageKeys = [];
    this.controllers = [];
    for (let k = 0; k < n; k++) {
      const key = fw.nicCtrlEnable(k);
      if (key === 0) throw new Error(`storage NIC: nicCtrlEnable(${k}) refused`);
      this.stageKeys.push(key);
      this.controllers.push(new StorageController(k, card, this.subsystem, this.ctrlOpts));
      this.link.push(true);
      this.crashed.push(false);
      this.lostSeen.push(false);
      this.reviving.push(false);
    }
  }

  /** Controller name in scenarios and reports: "A", "B", ... */
  static nameOf(k: number): string { return String.fromCharCode(65 + k); }
  /** Controller index of a scenario name ("A" → 0), -1 when it names none of this NIC's controllers. */
  indexOf(name: string): number {
    const k = /^[A-Z]$/.test(name) ? name.charCodeAt(0) - 65 : -1;
    return k < this.controllers.length ? k : -1;
  }

  /** Cut the link between the NIC and controller k: it sees no new commands and its WQEs are not fetched. */
  linkDown(k: number): void {
    this.check(k);
    if (!this.link[k]) return;
    this.link[k] = false;
    if (this.card.fw.nicCtrlLink(k) === N.CtrlLink.UP) this.card.fw.nicLinkDown(k);
    this.noticeLost();
  }

  /** Restore the link to controller k; it starts empty (what it held was taken over) and gets its QPs back. */
  linkUp(k: number): void {
    this.check(k);
    if (this.link[k]) return;
    this.link[k] = true;
    if (!this.crashed[k]) this.revive(k, "link-up");
  }

  /** Controller k stops and loses its in-memory state; the NIC finds out by the missing heartbeat. */
  crash(k: number): void {
    this.check(k);
    this.crashed[k] = true;
  }

  /** Controller k comes back after a crash, empty (rings reset through the NIC; the subsystem's state is shared). */
  restart(k: number): void {
    this.check(k);
    if (!this.crashed[k]) return;
    this.crashed[k] = false;
    if (this.link[k]) this.revive(k, "restart");
  }

  /** Failover statistics and each controller's state. */
  failovers(): FailoverStats {
    const c = this.card.counters() as Record<string, number>, dv = this.card.dv;
    const qps = this.controllers.map(() => 0);
    for (const b of this.bound) if (b) { const k = dv.getUint8(M.NIC_BASE + N.NG_QP_CTRL + b.qpn); if (k < qps.length) qps[k]!++; }
    const ncon = dv.getUint32(M.NIC_BASE + N.NG_NCONN, true);
    return {
      mode: this.mode,
      takeovers: c.nic_conn_takeovers ?? 0, failbacks: c.nic_conn_failbacks ?? 0, commandsMoved: c.nic_conn_redelivered ?? 0,
      packetsSkipped: c.nic_conn_skipped ?? 0, wqesDiscarded: c.nic_conn_wqes_discarded ?? 0, errorResponses: c.nic_conn_error_responses ?? 0,
      heartbeatLosses: c.nic_heartbeat_lost ?? 0, disconnects: this.disconnects,
      perConnector: Array.from({ length: ncon }, (_, i) => dv.getUint32(M.NIC_BASE + N.NG_STATS + i * 4, true)),
      controllers: this.controllers.map((_, k) => {
        const s = this.card.fw.nicCtrlLink(k);
        return { name: StorageNic.nameOf(k), k, link: this.link[k] ? "up" : "down", crashed: this.crashed[k]!, nic: s === N.CtrlLink.UP ? "up" : s === N.CtrlLink.LOST ? "lost" : "off", qps: qps[k]! };
      }),
    };
  }

  /** QP qpn's commands go through connector c (default: hash of the QPN). */
  setConnector(qpn: number, c: number): void {
    const b = this.bound.find((x) => x?.qpn === qpn);
    if (this.card.fw.nicQpConnector(qpn, c, b?.qid ?? 0) !== 0) throw new RangeError(`storage NIC: connector ${c} for QP ${qpn}`);
  }

  private check(k: number): void {
    if (!Number.isInteger(k) || k < 0 || k >= this.controllers.length) throw new RangeError(`storage NIC: no controller ${k}`);
  }

  /**
   * k's link is up and it runs: the NIC takes it back (failback), and k starts from empty rings
   * and an empty staging window, once no work request the NIC may still retransmit reads its
   * old window (until then it stays out: see step()).
   */
  private revive(k: number, why: "link-up" | "restart"): void {
    const fw = this.card.fw;
    this.reviveWhy[k] = why;
    if (fw.nicCtrlLink(k) === N.CtrlLink.UP) fw.nicLinkDown(k); // restarted before the NIC noticed: what the old one held moves first
    this.reviving[k] = true;
    this.tryRevive(k);
  }

  private tryRevive(k: number): void {
    const fw = this.card.fw;
    if (!this.link[k] || this.crashed[k]) { this.reviving[k] = false; return; }
    if (fw.nicCtrlBusy(k) !== 0) return;
    this.reviving[k] = false;
    fw.nicLinkUp(k);
    this.lostSeen[k] = false;
    this.onEvent?.({ at: this.card.now, controller: StorageNic.nameOf(k), from: "lost", to: "up", reason: this.reviveWhy[k] ?? "link-up" });
    this.controllers[k] = new StorageController(k, this.card, this.subsystem, this.ctrlOpts);
  }

  /** Controllers the NIC declared lost (link down, heartbeat): in reconnect mode their connections are torn down. */
  private noticeLost(): void {
    const fw = this.card.fw;
    for (let k = 0; k < this.controllers.length; k++) {
      if (this.lostSeen[k] || fw.nicCtrlLink(k) !== N.CtrlLink.LOST) continue;
      this.lostSeen[k] = true;
      this.onEvent?.({ at: this.card.now, controller: StorageNic.nameOf(k), from: "up", to: "lost", reason: this.link[k] ? "heartbeat" : "link-down" });
      if (this.mode !== "reconnect") continue;
      for (const b of this.bound) {
        if (!b || b.k !== k) continue;
        // The baseline: the connection ends (DREQ) and its QP errors out; the host reconnects.
        if (fw.rdmaCmDisconnect(b.id) === 0) this.disconnects++;
        fw.rdmaQpModify(b.qpn, QP_ERR, 0, 0, 0);
      }
    }
  }

  /** Controller k steps: it runs, its link is up and the NIC serves it. */
  private live(k: number): boolean { return this.link[k]! && !this.crashed[k] && this.card.fw.nicCtrlLink(k) === N.CtrlLink.UP; }

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
    this.noticeLost();
    for (let k = 0; k < this.controllers.length; k++) if (this.reviving[k]) this.tryRevive(k);
    this.bindNew();
    let wqes = 0;
    for (let k = 0; k < this.controllers.length; k++) if (this.live(k)) wqes += this.controllers[k]!.step();
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

  /**
   * Which controller serves each bound connection (by CM connection id): `controller` is the one
   * its new commands go to now (a standby after a failover; -1 when none is live), `home` the one
   * it was bound to.
   */
  bindings(): { id: number; qpn: number; qid: number; controller: number; home: number }[] {
    const dv = this.card.dv;
    return this.bound.filter((b) => b !== undefined).map((b) => {
      const now = dv.getUint8(M.NIC_BASE + N.NG_QP_CTRL + b.qpn);
      return { id: b.id, qpn: b.qpn, qid: b.qid, controller: now < this.controllers.length ? now : -1, home: b.k };
    });
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
      // Round-robin over the live controllers only; none live: retried next round.
      let k = -1;
      for (let j = 0; j < n && k < 0; j++) {
        const c = ((qid === 0 ? this.adminNext : this.ioNext) + j) % n;
        if (this.live(c)) { k = c; if (qid === 0) this.adminNext += j + 1; else this.ioNext += j + 1; }
      }
      if (k < 0) continue;
      if (this.card.fw.nicBindQp(qpn, k) !== 0) { this.bindErrors++; continue; } // retried next round
      this.card.fw.nicQpConnector(qpn, 0xff, qid);
      this.controllers[k]!.bindQp(qpn, dv.getUint32(a + CW.CN_MTU, true));
      this.bound[id] = { id, commId, qpn, qid, k };
      this.nbound++;
    }
  }

  private unbind(b: Bound): void {
    this.card.fw.nicBindQp(b.qpn, N.NIC_NO_CTRL);
    this.controllers[b.k]!.unbindQp(b.qpn); // the QP context is the subsystem's: any controller object unbinds it
    this.bound[b.id] = undefined;
    this.nbound--;
  }
}
