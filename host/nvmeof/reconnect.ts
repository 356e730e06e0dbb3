// The NVMe-oF host's recovery from a lost connection (what Linux nvme-rdma's error recovery and
// reconnect work do), on the virtual clock, one step per round and no waiting inside a step.
// The firmware holds a lost queue's requests (nvmfQueueHold: LIVE → RECONNECTING); here each
// such queue reconnects: RDMA-CM REQ for the same QID, nvmfQueueReconnect on the new QP, the
// Fabrics Connect with the association's CNTLID, nvmfQueueLive — which resubmits the held
// requests. A lost admin queue ends its association (NVMe-oF 1.1 §3.3: Connect with a known
// CNTLID is for I/O queues only): it reconnects first with CNTLID FFFFh, gets a new controller,
// enables it (CC.EN, CSTS.RDY), and that controller's I/O queues, dropped meanwhile, join it.
// After maxAttempts failed attempts or giveUpNs since the loss, the held requests fail (IOERR).
import type { Card } from "../card.js";
import * as CW from "../../assembly/rdma/cm-wire.js";
import * as S from "../../assembly/nvme/spec.js";
import * as F from "../../assembly/nvmeof/defs.js";
import * as REG from "../../assembly/nvme/regs.js";
import { writeConnect, writeProperty, ipWire, macHi, macLo, CC_ENABLE, NvmfError, type NvmfController, type NvmfTargetAddress } from "./initiator.js";

export interface ReconnectorOptions {
  /** The DPU card whose fabric queues to watch. */
  card: Card;
  target: NvmfTargetAddress;
  hostnqn: string;
  hostid?: Uint8Array;
  /** The associations connectController() returned, one per remote disk; their cntlid and cmIds are kept current. */
  controllers: NvmfController[];
  /** Attempts (CM connect + Fabrics Connect) per outage before the held requests fail. Default 5. */
  maxAttempts?: number;
  /** Virtual ns from the loss after which the held requests fail, attempts left or not. Default 10 ms. */
  giveUpNs?: number;
  /** Virtual ns between a failed attempt and the next. Default 100 µs. */
  retryDelayNs?: number;
  /** Virtual ns an attempt may take (CM REQ unanswered, Connect unanswered) before it counts as failed. Default 2 ms. */
  attemptNs?: number;
  /**
   * Virtual ns a queue may have commands out without any answer before the host declares its
   * connection lost (a target whose QP died silently after acknowledging them; Linux: the
   * request timeout). 0 = never. Default 5 ms.
   */
  ioTimeoutNs?: number;
  /** Guest whose RAM holds the reconnect commands (64 + 1024 bytes per queue). Default 0. */
  scratchGuest?: number;
}

/** One outage of one fabric queue, from the loss to the first completion after recovery. */
export interface ReconnectEvent {
  /** Index of the association in `controllers`, its fabric queue and NVMe-oF queue ID. */
  controller: number;
  queue: number;
  qid: number;
  /** Virtual ns: the loss (firmware), the queue LIVE again, the first request completed after it. */
  lostAt: number;
  liveAt?: number;
  firstDoneAt?: number;
  /** firstDoneAt - lostAt: what the requests of this queue waited at most for the outage. */
  stallNs?: number;
  attempts: number;
  /** Requests taken back from the lost connection and resubmitted on the new one. */
  resubmitted: number;
  /** Requests failed (IOERR) when it gave up. */
  failed: number;
  outcome: "recovering" | "reconnected" | "failed";
}

export interface ReconnectStats {
  /** Queues brought back (one per successful outage). */
  reconnects: number;
  resubmitted: number;
  failed: number;
  events: ReconnectEvent[];
}

/** Where a managed queue is; `to` is its one transition function. */
enum Phase {
  LIVE, // connected; the firmware reports a loss as RECONNECTING
  WAIT, // lost; the next attempt starts at `nextAt` (I/O queues: once their admin queue is LIVE)
  CM, // RDMA-CM REQ sent, waiting for ESTABLISHED
  CONNECT, // Fabrics Connect sent on the new QP
  ENABLE, // admin: Property Set CC.EN sent
  READY, // admin: Property Get CSTS sent, until RDY
  FAILED, // gave up; the firmware fails every request of the queue
}

interface Job {
  ctrl: number;
  cmIndex: number; // index in the association's cmIds
  q: number;
  qid: number;
  depth: number;
  mtu: number;
  sqe: number; // card offset: SQE + 1024 bytes of Connect data
  phase: Phase;
  cmId: number; // the connection of the current attempt (or the lost one)
  cid: number;
  attempts: number;
  nextAt: number;
  attemptAt: number;
  event?: ReconnectEvent;
}

const NONE = 0xffffffff;

export class NvmfReconnector {
  readonly maxAttempts: number;
  readonly giveUpNs: number;
  readonly retryDelayNs: number;
  readonly attemptNs: number;
  readonly ioTimeoutNs: number;
  private readonly jobs: Job[] = [];
  private readonly events: ReconnectEvent[] = [];
  private reconnects = 0;

  constructor(readonly o: ReconnectorOptions) {
    this.maxAttempts = o.maxAttempts ?? 5;
    this.giveUpNs = o.giveUpNs ?? 10_000_000;
    this.retryDelayNs = o.retryDelayNs ?? 100_000;
    this.attemptNs = o.attemptNs ?? 2_000_000;
    this.ioTimeoutNs = o.ioTimeoutNs ?? 5_000_000;
    const { card } = o;
    const g = card.guests[o.scratchGuest ?? 0];
    if (!g) throw new NvmfError(`NVMe-oF reconnector: no guest ${o.scratchGuest ?? 0} for its commands`);
    o.controllers.forEach((c, ctrl) => {
      [c.adminQueue, ...c.ioQueues].forEach((q, i) => {
        const st = card.fw.nvmfQueueState(q);
        if (st !== F.NvmfQueueState.LIVE) throw new NvmfError(`NVMe-oF reconnector: fabric queue ${q} is not live (state ${st})`);
        if (card.fw.nvmfQueueHold(q, 1) !== 0) throw new NvmfError(`NVMe-oF reconnector: fabric queue ${q} refused to hold its requests`);
        const cmId = c.cmIds[i]!;
        const mtu = card.dv.getUint32(card.fw.rdmaCmConnAddr(cmId) + CW.CN_MTU, true);
        const depth = card.dv.getUint32(card.fw.nvmfQueueAddr(q) + F.NQ_DEPTH, true);
        const sqe = g.base + g.alloc(S.SQE_SIZE + F.CONN_DATA_SIZE, 64);
        this.jobs.push({ ctrl, cmIndex: i, q, qid: i, depth, mtu, sqe, phase: Phase.LIVE, cmId, cid: NONE, attempts: 0, nextAt: 0, attemptAt: 0 });
      });
    });
  }

  /** Once per round, after the card's poll: notice lost queues and move every reconnect on. */
  step(now: number): void {
    for (const j of this.jobs) this.advance(j, now);
  }

  stats(): ReconnectStats {
    const ev = this.events;
    return {
      reconnects: this.reconnects,
      resubmitted: ev.reduce((n, e) => n + e.resubmitted, 0),
      failed: ev.reduce((n, e) => n + e.failed, 0),
      events: ev.map((e) => ({ ...e })),
    };
  }

  private get fw() { return this.o.card.fw; }
  private entry(j: Job): number { return this.fw.nvmfQueueAddr(j.q); }
  private admin(j: Job): Job { return this.jobs.find((a) => a.ctrl === j.ctrl && a.qid === 0)!; }

  private to(j: Job, p: Phase, now: number): void {
    j.phase = p;
    if (p === Phase.CM || p === Phase.CONNECT) j.attemptAt = now;
  }

  private advance(j: Job, now: number): void {
    const fw = this.fw;
    this.closeEvent(j);
    if (j.phase === Phase.LIVE) {
      const st = fw.nvmfQueueState(j.q);
      if (st === F.NvmfQueueState.LIVE && this.stuck(j, now)) fw.nvmfQueueDrop(j.q);
      if (fw.nvmfQueueState(j.q) === F.NvmfQueueState.RECONNECTING) this.lost(j, now);
      return;
    }
    if (j.phase === Phase.FAILED) return;
    if (now - j.event!.lostAt >= this.giveUpNs) { this.abandonAttempt(j); this.giveUp(j, now); return; }
    if (j.phase !== Phase.WAIT && now - j.attemptAt >= this.attemptNs) { this.failAttempt(j, now); return; }
    switch (j.phase) {
      case Phase.WAIT: return this.tryStart(j, now);
      case Phase.CM: return this.onCm(j, now);
      case Phase.CONNECT: return this.onConnect(j, now);
      case Phase.ENABLE: return this.onEnable(j, now);
      case Phase.READY: return this.onReady(j, now);
    }
  }

  /** Commands out on the queue and no answer for ioTimeoutNs: its connection is as good as lost. */
  private stuck(j: Job, now: number): boolean {
    if (this.ioTimeoutNs <= 0) return false;
    const a = this.entry(j), dv = this.o.card.dv;
    const busy = (dv.getUint32(a + F.NQ_BUSY, true) | dv.getUint32(a + F.NQ_BUSY + 4, true)) !== 0;
    return busy && now - dv.getFloat64(a + F.NQ_PROGRESS_AT, true) >= this.ioTimeoutNs;
  }

  /** The firmware holds the queue's requests: open the outage, say goodbye on the old connection. */
  private lost(j: Job, now: number): void {
    const lostAt = this.o.card.dv.getFloat64(this.entry(j) + F.NQ_LOST_AT, true);
    j.event = { controller: j.ctrl, queue: j.q, qid: j.qid, lostAt, attempts: 0, resubmitted: 0, failed: 0, outcome: "recovering" };
    this.events.push(j.event);
    j.attempts = 0;
    j.nextAt = now;
    this.endConn(j.cmId);
    this.to(j, Phase.WAIT, now);
    if (j.qid !== 0) return;
    // The association ended with its admin queue: its I/O queues must join the new one.
    for (const io of this.jobs) {
      if (io.ctrl !== j.ctrl || io.qid === 0 || io.phase !== Phase.LIVE) continue;
      this.fw.nvmfQueueDrop(io.q);
      this.lost(io, now);
    }
  }

  /** Let go of a CM connection: DREQ when established, free it when it ended on our side. */
  private endConn(id: number): void {
    const st = this.fw.rdmaCmState(id);
    if (st === CW.CmState.ESTABLISHED) this.fw.rdmaCmDisconnect(id);
    else if (st === CW.CmState.REJECTED || st === CW.CmState.TIMED_OUT) this.fw.rdmaCmRelease(id);
  }

  private tryStart(j: Job, now: number): void {
    if (now < j.nextAt) return;
    if (j.qid !== 0 && this.admin(j).phase !== Phase.LIVE) return; // its association first
    if (j.attempts >= this.maxAttempts) { this.giveUp(j, now); return; }
    j.attempts++;
    j.event!.attempts = j.attempts;
    const t = this.o.target, ctrl = this.o.controllers[j.ctrl]!;
    const cntlid = j.qid === 0 ? F.CNTLID_DYNAMIC : ctrl.cntlid;
    j.cmId = this.fw.rdmaCmConnect(t.port ?? F.NVMF_PORT, j.qid, j.depth, j.depth - 1, cntlid, j.mtu, ipWire(t.ip), macHi(t.mac), macLo(t.mac));
    if (j.cmId === CW.CM_NONE) { this.failAttempt(j, now); return; }
    this.to(j, Phase.CM, now);
  }

  private onCm(j: Job, now: number): void {
    const fw = this.fw, st = fw.rdmaCmState(j.cmId);
    if (st === CW.CmState.REJECTED || st === CW.CmState.TIMED_OUT) { this.failAttempt(j, now); return; }
    if (st !== CW.CmState.ESTABLISHED) return;
    const qpn = this.o.card.dv.getUint32(fw.rdmaCmConnAddr(j.cmId) + CW.CN_LOCAL_QPN, true);
    if (fw.nvmfQueueReconnect(j.q, qpn) !== 0) { this.failAttempt(j, now); return; }
    const ctrl = this.o.controllers[j.ctrl]!;
    writeConnect(this.o.card, j.sqe, {
      qid: j.qid, sqsize: j.depth - 1, cntlid: j.qid === 0 ? F.CNTLID_DYNAMIC : ctrl.cntlid,
      subnqn: this.o.target.subnqn, hostnqn: this.o.hostnqn, hostid: this.o.hostid,
    });
    if (!this.send(j, F.CONN_DATA_SIZE)) { this.failAttempt(j, now); return; }
    this.to(j, Phase.CONNECT, now);
  }

  private send(j: Job, dataLen: number): boolean {
    j.cid = this.fw.nvmfSubmitRaw(j.q, j.sqe, dataLen);
    return j.cid !== NONE;
  }

  /** The answer to the command in flight: its CQE DW0 and status, null while pending, "lost" when the queue lost it. */
  private result(j: Job): { dw0: number; status: number } | null | "lost" {
    const at = this.fw.nvmfRawResult(j.q, j.cid);
    if (at === NONE) return "lost";
    if (at === F.RAW_PENDING) return null;
    const dv = this.o.card.dv;
    return { dw0: dv.getUint32(at + S.CQE_DW0, true), status: (dv.getUint32(at + S.CQE_DW3, true) >>> S.CQE_STATUS_SHIFT) & 0x7ff };
  }

  private onConnect(j: Job, now: number): void {
    const r = this.result(j);
    if (r === null) return;
    if (r === "lost" || r.status !== 0) { this.failAttempt(j, now); return; }
    if (j.qid !== 0) { this.live(j, now); return; }
    this.o.controllers[j.ctrl]!.cntlid = r.dw0 & 0xffff; // a new association
    writeProperty(this.o.card, j.sqe, REG.NVME_REG_CC, CC_ENABLE);
    if (!this.send(j, 0)) { this.failAttempt(j, now); return; }
    this.to(j, Phase.ENABLE, now);
  }

  private onEnable(j: Job, now: number): void {
    const r = this.result(j);
    if (r === null) return;
    if (r === "lost" || r.status !== 0) { this.failAttempt(j, now); return; }
    this.askReady(j, now);
  }

  private askReady(j: Job, now: number): void {
    writeProperty(this.o.card, j.sqe, REG.NVME_REG_CSTS);
    if (!this.send(j, 0)) { this.failAttempt(j, now); return; }
    this.to(j, Phase.READY, now);
  }

  private onReady(j: Job, now: number): void {
    const r = this.result(j);
    if (r === null) return;
    if (r === "lost" || r.status !== 0) { this.failAttempt(j, now); return; }
    if ((r.dw0 & REG.NVME_CSTS_RDY) === 0) { this.askReady(j, now); return; }
    this.live(j, now);
  }

  /** Connected again: the firmware resubmits what it held. */
  private live(j: Job, now: number): void {
    const dv = this.o.card.dv, e = j.event!;
    e.resubmitted += dv.getUint32(this.entry(j) + F.NQ_HELD, true);
    if (this.fw.nvmfQueueLive(j.q) !== 0) { e.resubmitted = 0; this.failAttempt(j, now); return; }
    this.o.controllers[j.ctrl]!.cmIds[j.cmIndex] = j.cmId;
    e.liveAt = now;
    e.outcome = "reconnected";
    this.reconnects++;
    this.to(j, Phase.LIVE, now);
    this.closeEvent(j);
  }

  /** The first completion after recovery (the firmware notes it) ends the outage: its stall. */
  private closeEvent(j: Job): void {
    const e = j.event;
    if (!e || e.outcome !== "reconnected" || e.firstDoneAt !== undefined) return;
    const a = this.entry(j), dv = this.o.card.dv;
    if (dv.getUint32(a + F.NQ_OUTAGE, true) !== 0) return;
    e.firstDoneAt = dv.getFloat64(a + F.NQ_DONE_AT, true);
    e.stallNs = e.firstDoneAt - e.lostAt;
  }

  /** Close the attempt in progress: its connection goes, the queue holds its requests again. */
  private abandonAttempt(j: Job): void {
    if (j.phase === Phase.WAIT) return;
    if (this.fw.nvmfQueueState(j.q) === F.NvmfQueueState.RESUMING) this.fw.nvmfQueueDrop(j.q);
    this.endConn(j.cmId);
  }

  private failAttempt(j: Job, now: number): void {
    this.abandonAttempt(j);
    if (j.attempts >= this.maxAttempts) { this.giveUp(j, now); return; }
    j.nextAt = now + this.retryDelayNs;
    this.to(j, Phase.WAIT, now);
  }

  /** No more attempts: the held and waiting requests fail, and so does every later one. An admin queue takes its I/O queues along. */
  private giveUp(j: Job, now: number): void {
    if (j.phase === Phase.FAILED) return;
    const e = j.event!;
    e.failed += this.fw.nvmfQueueFailHeld(j.q);
    e.outcome = "failed";
    this.to(j, Phase.FAILED, now);
    if (j.qid !== 0) return;
    for (const io of this.jobs) {
      if (io.ctrl !== j.ctrl || io.qid === 0 || io.phase === Phase.FAILED || io.phase === Phase.LIVE) continue;
      this.abandonAttempt(io);
      this.giveUp(io, now);
    }
  }
}
