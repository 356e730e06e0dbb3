// The NIC side of a storage controller's rings, played by the test (assembly/nic/defs.ts
// layouts): capsules put in receive buffers and command ring entries; the controller's WQEs
// taken in order from its send queue and carried out against "host memory" (byte arrays by
// R_Key); events written back. This tests the controller's contract with the NIC rings
// without the NIC firmware.
import { Card } from "../../host/card.js";
import { MemoryBackend } from "../../host/backends/memory.js";
import { StorageController, type ControllerOptions } from "../../host/target/controller.js";
import * as M from "../../assembly/memmap.js";
import * as N from "../../assembly/nic/defs.js";
import { parseCqe, type Cqe } from "./nvmf.js";

export { N, M };

export interface Wqe {
  type: N.NicWqeType; flags: number; cid: number; qpn: number; stageOff: number; len: number; raddr: bigint; rkey: number;
  total: number; piOff: number; reftag: number; block: number; tag: number;
}

export interface Response { qpn: number; cqe: Cqe }

export class RingNic {
  readonly base: number;
  readonly stage: number;
  readonly host = new Map<number, { va: bigint; bytes: Uint8Array }>(); // by R_Key
  readonly wqes: Wqe[] = [];
  readonly responses: Response[] = [];
  doorbells = 0;
  private slot = 0;
  private readonly msgOff = new Map<number, number>(); // by tag: bytes of the current WRITE message placed (a message may span serve() calls)

  constructor(readonly card: Card, readonly k: number) {
    this.base = M.NIC_CTRLS + k * M.NIC_CTRL_SIZE;
    this.stage = M.NIC_STAGE_BASE + k * M.NIC_STAGE_SIZE;
    card.u8.fill(0, this.base, this.base + M.NIC_CTRL_BLOCK);
    this.set(N.CB_ON, 1);
  }

  u32(f: number): number { return this.card.dv.getUint32(this.base + f, true); }
  set(f: number, v: number): void { this.card.dv.setUint32(this.base + f, v >>> 0, true); }

  /** Host memory the SGLs may name: `bytes` at VA va under key. */
  region(key: number, va: bigint, bytes: Uint8Array): void { this.host.set(key, { va, bytes }); }

  /** A capsule received on qpn: into the next receive buffer and the command ring. */
  submit(qpn: number, capsule: Uint8Array, len = capsule.length): void {
    const slot = this.slot++ % (M.NIC_MAX_QPS * M.NIC_RECV_DEPTH);
    const buf = M.NIC_RECV_BASE + slot * M.NIC_RECV_SLOT;
    this.card.u8.set(capsule, buf);
    const p = this.u32(N.CB_CMD_PROD);
    const e = this.base + N.NC_CMD + (p % M.NIC_CMD_DEPTH) * N.CMD_SIZE, dv = this.card.dv;
    dv.setUint32(e + N.CMD_QPN, qpn, true);
    dv.setUint32(e + N.CMD_CAPSULE, buf, true);
    dv.setUint32(e + N.CMD_LEN, len, true);
    dv.setUint32(e + N.CMD_RECV_SLOT, slot, true);
    this.set(N.CB_CMD_PROD, p + 1);
  }

  event(tag: number, kind: N.EvKind, status = 0, qpn = 0): void {
    const p = this.u32(N.CB_EVT_PROD);
    const e = this.base + N.NC_EVT + (p % M.NIC_EVT_DEPTH) * N.EV_SIZE, dv = this.card.dv;
    dv.setUint32(e + N.EV_TAG, tag, true);
    dv.setUint32(e + N.EV_KIND, kind, true);
    dv.setUint32(e + N.EV_STATUS, status, true);
    dv.setUint32(e + N.EV_QPN, qpn, true);
    this.set(N.CB_EVT_PROD, p + 1);
  }

  /** WQEs written and not fetched yet (does not fetch them). */
  pending(): Wqe[] {
    const out: Wqe[] = [];
    for (let h = this.u32(N.CB_SQ_HEAD); h !== this.u32(N.CB_SQ_TAIL); h = (h + 1) >>> 0) out.push(this.read(h));
    return out;
  }

  /**
   * Fetch up to `max` WQEs and do what the NIC would: READ copies host data into staging then
   * READ_DONE; data packets are written at RADDR + their offset; RESPONSE records the CQE and,
   * signaled, SENT. `fail(w)` makes a WQE complete with an ERROR event instead.
   */
  serve(max = Infinity, fail?: (w: Wqe) => boolean): Wqe[] {
    const done: Wqe[] = [];
    const msgOff = this.msgOff;
    for (let h = this.u32(N.CB_SQ_HEAD); h !== this.u32(N.CB_SQ_TAIL) && done.length < max; h = (h + 1) >>> 0) {
      const w = this.read(h);
      this.set(N.CB_SQ_HEAD, h + 1);
      done.push(w);
      this.wqes.push(w);
      if (w.stageOff + Math.max(w.len, w.total * (w.type === N.NicWqeType.READ ? 1 : 0)) > M.NIC_STAGE_SIZE) throw new Error("WQE outside staging");
      if (fail?.(w)) { this.event(w.tag, N.EvKind.ERROR, 99, w.qpn); continue; }
      const u8 = this.card.u8;
      if (w.type === N.NicWqeType.READ) {
        u8.set(this.hostBytes(w, 0, w.total), this.stage + w.stageOff);
        this.event(w.tag, N.EvKind.READ_DONE, 0, w.qpn);
      } else if (w.type === N.NicWqeType.RESPONSE) {
        this.responses.push({ qpn: w.qpn, cqe: parseCqe(u8.slice(this.stage + w.stageOff, this.stage + w.stageOff + 16)) });
        if (w.flags & N.NWF_SIGNALED) this.event(w.tag, N.EvKind.SENT, 0, w.qpn);
      } else {
        const at = w.type === N.NicWqeType.INITIAL || w.type === N.NicWqeType.SINGLE ? 0 : msgOff.get(w.tag) ?? 0;
        this.hostBytes(w, at, w.len).set(u8.subarray(this.stage + w.stageOff, this.stage + w.stageOff + w.len));
        msgOff.set(w.tag, at + w.len);
      }
    }
    return done;
  }

  /** Whether the whole message of data / READ WQE w lies in a registered host region (else the real NIC would get a NAK). */
  inHost(w: Wqe): boolean {
    const r = this.host.get(w.rkey);
    if (!r) return false;
    const o = w.raddr - r.va;
    return o >= 0n && o + BigInt(w.total) <= BigInt(r.bytes.length);
  }

  private hostBytes(w: Wqe, at: number, n: number): Uint8Array {
    const r = this.host.get(w.rkey);
    if (!r) throw new Error(`no host region with key ${w.rkey}`);
    const o = Number(w.raddr - r.va) + at;
    if (o < 0 || o + n > r.bytes.length) throw new Error("outside the host region");
    return r.bytes.subarray(o, o + n);
  }

  private read(h: number): Wqe {
    const w = this.base + N.NC_SQ + (h % M.NIC_SQ_DEPTH) * N.NW_SIZE, dv = this.card.dv;
    const u = (o: number) => dv.getUint32(w + o, true);
    return {
      type: this.card.u8[w + N.NW_TYPE]!, flags: this.card.u8[w + N.NW_FLAGS]!, cid: dv.getUint16(w + N.NW_CID, true), qpn: u(N.NW_QPN),
      stageOff: u(N.NW_STAGE_OFF), len: u(N.NW_LEN), raddr: dv.getBigUint64(w + N.NW_RADDR, true), rkey: u(N.NW_RKEY), total: u(N.NW_TOTAL),
      piOff: u(N.NW_PI_OFF), reftag: u(N.NW_REFTAG), block: u(N.NW_BLOCK), tag: u(N.NW_TAG),
    };
  }
}

export interface Setup { card: Card; nic: RingNic; ctrl: StorageController; backend: MemoryBackend; disk: Uint8Array }

/** A card, a memory backend of `bytes` and controller k with the test playing its NIC. */
export async function setup(o: ControllerOptions & { bytes?: number; bs?: 512 | 4096; k?: number } = {}): Promise<Setup> {
  const card = await Card.create({ guests: [], disks: [] });
  const disk = new Uint8Array(o.bytes ?? 1 << 20);
  const backend = new MemoryBackend(disk, o.bs ?? 512);
  const k = o.k ?? 0;
  const nic = new RingNic(card, k);
  const ctrl = new StorageController(k, card, backend, { mtu: 1024, ...o, doorbell: () => { nic.doorbells++; } });
  return { card, nic, ctrl, backend, disk };
}

/** Step the controller and serve its WQEs until no WQE is pending (or rounds run out). */
export function settle(s: Setup, rounds = 100): void {
  for (let i = 0; i < rounds; i++) {
    s.ctrl.step();
    if (s.nic.pending().length === 0 && s.ctrl.inFlight() === 0) return;
    s.nic.serve();
  }
}
