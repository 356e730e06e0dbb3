// rdma-cm: RDMA-CM MADs from the network (UD SEND ONLY to QP1 with the GSI Q_Key in the DETH)
// into a card's connection manager (rdma/cm.ts) through the whole receive path. The baseline
// card (10.0.0.2) listens on 4420 and 4421 and holds connections in every state: active ones
// in REQ_SENT, ESTABLISHED and DISCONNECTING towards the peer 10.0.0.1, passive ones in
// REP_SENT and ESTABLISHED from it (all set up by MADs through the receive path).
//
// An input is a program of MADs built from the layouts in assembly/rdma/cm-wire.ts (REQ with
// the RDMA IP CM header and the NVMe-oF private data, REP, RTU, REJ, DREQ, DREP, and unknown
// attributes) addressed to a connection of the table (its local comm ID, the peer's comm ID)
// or to made-up IDs, from the peer or from another address, with mutated fields (service ID,
// port, QPN, PSN, MTU, transport, private data, MAD header, one byte anywhere) and the
// frame-level damage of roce-rx; plus host calls (connect, disconnect, release), polls and
// virtual time for the CM's retransmits, give-ups and TIMEWAIT expiry.
//
// Oracles: those of roce-rx (no trap, memory audit, every frame accounted for once, RX ring
// drained), and the CM invariants: every connection entry has a CmState and a CmRole that fit
// it (LISTEN/REQ_RCVD/REP_SENT passive, REQ_SENT/REP_RCVD/REJECTED/TIMED_OUT active, IDLE with
// no role); a live entry's local comm ID names its slot; no two live connections hold the same
// QP, which is at or above the CM's first QPN; each connection's QP is in the state its CM
// state implies (REQ_SENT/REQ_RCVD: INIT; REP_SENT: RTR; ESTABLISHED, DISCONNECTING: RTS;
// TIMEWAIT, REJECTED, TIMED_OUT: ERR); QP1 stays the GSI UD QP in RTS; no other QP changed
// state unless a connection holds it or held it at the baseline.
import * as M from "../../../assembly/memmap.js";
import * as W from "../../../assembly/rdma/wire.js";
import * as CW from "../../../assembly/rdma/cm-wire.js";
import * as R from "../../../assembly/rdma/rcdefs.js";
import { FuzzCard, Finding, range, tracked, type Range } from "../card.js";
import { ProgramCodec, type Op, type OpSpec } from "../program.js";
import type { Rng } from "../rng.js";
import type { Harness, Target } from "../target.js";
import { buildFrame, built, fixIcrc, ipChecksum, RxRing, Dmg, LOCAL, PEER, IPO, ipWire, macHi, macLo, CRC_LANE_TMP } from "./roce-rx.js";

const CmState = CW.CmState, CmRole = CW.CmRole;
const QPN_FIRST = 0x10; // rdma/cm.ts: QPs below are not the CM's
const QpState = { RESET: 0, INIT: 1, RTR: 2, RTS: 3, ERR: 4 } as const; // rdma/qp.ts
const QP_QKEY = 60, QP_TRANSPORT = 4; // rdma/qp.ts entry fields
const OTHER = { ip: [10, 0, 0, 9], mac: [0x02, 0, 0, 0, 0, 0x09] };
const ATTRS = [CW.CM_ATTR_REQ, CW.CM_ATTR_REP, CW.CM_ATTR_RTU, CW.CM_ATTR_REJ, CW.CM_ATTR_DREQ, CW.CM_ATTR_DREP, 0x0011, 0x0019, 0xffff];
const PEER_COMM_BASE = 0x7000_0000;

/** A MAD as the peer's CM would send it; `peer` is the peer's comm ID, `ours` ours (0 in a REQ). */
interface MadSpec {
  attr: number; peer: number; ours: number; qpn: number; psn: number; port: number; mtu: number; pd: number;
  hdr: number; at: number; val: number;
}

const MAD_FIELDS = [
  { name: "attr", width: 1, interesting: [0, 1, 2, 3, 4, 5, 6, 7, 8] },
  { name: "conn", width: 1, interesting: [0, 1, 2, 3, 4, 5, 6, 63, 64, 0xff] }, // connection slot (≥ 64: made-up IDs)
  { name: "peer", width: 4, interesting: [0, 1, PEER_COMM_BASE, 0xffffffff] }, // the peer's comm ID (offset)
  { name: "qpn", width: 4, interesting: [0, 1, 0x10, 0xff, 0x100, 0xffffff] },
  { name: "psn", width: 4, interesting: [0, 1, 0xffffff, 0x7fffff] },
  { name: "port", width: 2, interesting: [4420, 4421, 4422, 0, 0xffff] },
  { name: "mtu", width: 1, interesting: [0x37, 0x17, 0x57, 0x67, 0x07, 0xf7, 0x30] }, // MTU code [7:4] | RNR retry [2:0]
  { name: "pd", width: 4, interesting: [0, 1, 0x10000, 0xffffffff] }, // qid | hrqsize << 16, and the private data's checks
  { name: "hdr", width: 1, interesting: [0, 0, 0, 1, 2, 3, 4, 5, 6] }, // which header/layout field to break
  { name: "at", width: 1, interesting: [0, 1, 2, 3, 16, 17, 24, 28, 164, 200, 255] },
  { name: "val", width: 1, interesting: [0, 1, 0x7f, 0x80, 0xff] },
  { name: "from", width: 1, interesting: [0, 1] }, // 0: the peer, 1: another address
  { name: "dmg", width: 1, interesting: [0, 0, 0, Dmg.ICRC, Dmg.SLOT_LEN, Dmg.DQP, Dmg.BYTE] },
  { name: "dv", width: 4, interesting: [0, 1, 0xffff, 0xffffffff] },
  { name: "plen", width: 2, interesting: [256, 255, 0, 260, 1024] },
  { name: "qkey", width: 4, interesting: [0, 1, W.GSI_QKEY, 0x80010001] }, // 0: the GSI Q_Key
] as const;

const OPS: OpSpec[] = [
  { name: "mad", fields: MAD_FIELDS },
  { name: "poll", fields: [{ name: "budget", width: 1, interesting: [0, 1, 255] }] },
  { name: "time", fields: [{ name: "us", width: 2, interesting: [1, 999, 1000, 1001, 0xffff] }] },
  { name: "connect", fields: [{ name: "port", width: 2, interesting: [4420, 4421] }, { name: "qid", width: 2 }, { name: "mtu", width: 2, interesting: [256, 1024, 4096, 100, 0] }] },
  { name: "disconnect", fields: [{ name: "id", width: 1, interesting: [0, 1, 2, 3, 4, 5, 6, 63, 64] }] },
  { name: "release", fields: [{ name: "id", width: 1, interesting: [0, 1, 2, 3, 4, 5, 6, 63, 64] }] },
];

/** The MAD (256 bytes) into `m` from the cm-wire.ts layouts (big-endian fields, IBTA §12.6). */
function buildMad(m: Uint8Array, dv: DataView, s: MadSpec, from: { ip: number[] }): void {
  m.fill(0);
  m[CW.MAD_BASE_VERSION_OFF] = CW.MAD_BASE_VERSION; m[CW.MAD_CLASS_OFF] = CW.MGMT_CLASS_CM;
  m[CW.MAD_CLASS_VERSION_OFF] = CW.CM_CLASS_VERSION; m[CW.MAD_METHOD_OFF] = CW.MAD_METHOD_SEND;
  dv.setUint32(CW.MAD_TID_OFF, 2); dv.setUint32(CW.MAD_TID_OFF + 4, s.peer);
  dv.setUint16(CW.MAD_ATTR_ID_OFF, s.attr);
  switch (s.attr) {
    case CW.CM_ATTR_REQ: {
      dv.setUint32(CW.REQ_LOCAL_COMM_ID, s.peer);
      dv.setUint32(CW.REQ_SERVICE_ID, CW.IP_CM_SID_PREFIX_HI);
      dv.setUint32(CW.REQ_SERVICE_ID + 4, (CW.IP_CM_SID_PREFIX_LO | (CW.IP_CM_PS_TCP << 16) | (s.port & 0xffff)) >>> 0);
      dv.setUint32(CW.REQ_LOCAL_QPN, ((s.qpn << 8) | 1) >>> 0);
      dv.setUint32(CW.REQ_INITIATOR_DEPTH, 1);
      m[CW.REQ_REMOTE_EECN + 3] = (CW.CM_TIMEOUT_EXP << 3) | (CW.CM_TRANSPORT_RC << 1);
      dv.setUint32(CW.REQ_STARTING_PSN, ((s.psn << 8) | (CW.CM_TIMEOUT_EXP << 3) | 7) >>> 0);
      dv.setUint16(CW.REQ_PKEY, W.DEFAULT_PKEY);
      m[CW.REQ_MTU] = s.mtu; m[CW.REQ_MAX_CM_RETRIES] = 15 << 4;
      dv.setUint16(CW.REQ_PRIMARY_LOCAL_LID, 0xffff); dv.setUint16(CW.REQ_PRIMARY_REMOTE_LID, 0xffff);
      const gid = (at: number, ip: number[]) => { m[at + 10] = 0xff; m[at + 11] = 0xff; m.set(ip, at + 12); };
      gid(CW.REQ_PRIMARY_LOCAL_GID, from.ip); gid(CW.REQ_PRIMARY_REMOTE_GID, LOCAL.ip);
      m[CW.REQ_PRIMARY_HOP_LIMIT] = 64; m[CW.REQ_PRIMARY_ACK_TIMEOUT] = 18 << 3;
      const p = CW.REQ_PRIVATE_DATA; // RDMA IP CM header (Annex A11.6), then NVMe-oF RDMA REQ data (little-endian)
      m[p + CW.IP_CM_VERSION_OFF] = 0; m[p + CW.IP_CM_IPVER_OFF] = CW.IP_CM_IPV4;
      dv.setUint16(p + CW.IP_CM_SPORT_OFF, 0xc000 | (s.peer & 0xff));
      m.set(from.ip, p + CW.IP_CM_SRC_IP4_OFF); m.set(LOCAL.ip, p + CW.IP_CM_DST_IP4_OFF);
      const n = p + CW.IP_CM_HDR_LEN;
      dv.setUint16(n + CW.NVMF_REQ_RECFMT, 0, true); dv.setUint16(n + CW.NVMF_REQ_QID, s.pd & 0xffff, true);
      dv.setUint16(n + CW.NVMF_REQ_HRQSIZE, (s.pd >>> 16) || 32, true); dv.setUint16(n + CW.NVMF_REQ_HSQSIZE, 31, true);
      dv.setUint16(n + CW.NVMF_REQ_CNTLID, 0xffff, true);
      break;
    }
    case CW.CM_ATTR_REP:
      dv.setUint32(CW.REP_LOCAL_COMM_ID, s.peer); dv.setUint32(CW.REP_REMOTE_COMM_ID, s.ours);
      dv.setUint32(CW.REP_LOCAL_QPN, (s.qpn << 8) >>> 0); dv.setUint32(CW.REP_STARTING_PSN, (s.psn << 8) >>> 0);
      m[CW.REP_RESPONDER_RESOURCES] = 1; m[CW.REP_INITIATOR_DEPTH] = 1; m[CW.REP_RNR_RETRY] = 7 << 5;
      dv.setUint16(CW.REP_PRIVATE_DATA + CW.NVMF_REP_RECFMT, 0, true); dv.setUint16(CW.REP_PRIVATE_DATA + CW.NVMF_REP_CRQSIZE, s.pd & 0xffff, true);
      break;
    case CW.CM_ATTR_REJ:
      dv.setUint32(CW.REJ_LOCAL_COMM_ID, s.peer); dv.setUint32(CW.REJ_REMOTE_COMM_ID, s.ours);
      m[CW.REJ_MSG_REJECTED] = (s.pd & 3) << 6; dv.setUint16(CW.REJ_REASON, (s.pd >>> 16) || CW.REJ_REASON_CONSUMER);
      break;
    case CW.CM_ATTR_DREQ:
      dv.setUint32(CW.DREQ_LOCAL_COMM_ID, s.peer); dv.setUint32(CW.DREQ_REMOTE_COMM_ID, s.ours);
      dv.setUint32(CW.DREQ_REMOTE_QPN, (s.qpn << 8) >>> 0);
      break;
    default: // RTU, DREP and unknown attributes: the two comm IDs
      dv.setUint32(CW.RTU_LOCAL_COMM_ID, s.peer); dv.setUint32(CW.RTU_REMOTE_COMM_ID, s.ours);
  }
  switch (s.hdr % 8) { // one layout field broken (0: none)
    case 1: m[CW.MAD_BASE_VERSION_OFF] = s.val; break;
    case 2: m[CW.MAD_CLASS_OFF] = s.val; break;
    case 3: m[CW.MAD_CLASS_VERSION_OFF] = s.val; break;
    case 4: m[CW.MAD_METHOD_OFF] = s.val; break;
    case 5: m[s.at] = s.val; break; // any byte of the MAD
    case 6: if (s.attr === CW.CM_ATTR_REQ) m[CW.REQ_REMOTE_EECN + 3] = s.val; else m[s.at] ^= s.val; break; // transport service type
    case 7: if (s.attr === CW.CM_ATTR_REQ) m[CW.REQ_PRIVATE_DATA + (s.at % 48)] = s.val; else m[s.at] = s.val; break; // private data
  }
}

class RdmaCmHarness implements Harness {
  readonly codec = new ProgramCodec(OPS, 1);
  readonly unit = "edges";
  private rx!: RxRing;
  private readonly mad = new Uint8Array(CW.MAD_SIZE + 64);
  private readonly madDv = new DataView(this.mad.buffer);
  /** QP numbers a connection held at the baseline. */
  private readonly baseQps = new Set<number>();
  private readonly qpBefore = new Uint8Array(M.MAX_QPS);
  private now = 0;

  private constructor(readonly fc: FuzzCard) {}

  get total(): number { return this.fc.edgesTotal; }
  /** Only the firmware writes card memory: the full audit is the safety net behind the per-input page audit. */
  get auditEvery(): number | undefined { return this.fc.tracking ? 1 << 14 : undefined; }
  get mapSize(): number { return M.FUZZ_COV_SIZE; }

  static async create(module?: WebAssembly.Module): Promise<RdmaCmHarness> {
    const fc = await FuzzCard.create({ guests: [{ ramBytes: 0x1000 }], disks: [] }, module);
    const card = fc.card, fw = card.fw;
    const h = new RdmaCmHarness(fc);
    if (fw.rdmaCmInit(ipWire(LOCAL.ip), macHi(LOCAL.mac), macLo(LOCAL.mac)) !== 0) throw new Error("rdma-cm baseline: CM init");
    for (const port of [4420, 4421]) if (fw.rdmaCmListen(port) === 0xffffffff) throw new Error("rdma-cm baseline: listen");
    h.rx = new RxRing(fc); // a provisional ring view for building the baseline
    const connect = () => fw.rdmaCmConnect(4420, 1, 32, 31, 1, 1024, ipWire(PEER.ip), macHi(PEER.mac), macLo(PEER.mac));
    const step = () => { h.now += 1000; fw.rdmaRxPoll(1024); fw.rdmaCmPoll(h.now); };
    const local = (id: number) => card.dv.getUint32(fw.rdmaCmConnAddr(id) + CW.CN_LOCAL_COMM_ID, true);
    const send = (attr: number, peer: number, ours: number, extra: Partial<MadSpec> = {}) => {
      h.pushMad({ attr, peer, ours, qpn: 0x99, psn: 0x1234, port: 4420, mtu: 0x37, pd: 1 | (32 << 16), hdr: 0, at: 0, val: 0, ...extra }, PEER, 0, 0, 256, W.GSI_QKEY);
    };
    // active: one in REQ_SENT, one ESTABLISHED, one DISCONNECTING
    const a1 = connect(), a2 = connect(), a3 = connect();
    if ([a1, a2, a3].includes(0xffffffff)) throw new Error("rdma-cm baseline: connect");
    send(CW.CM_ATTR_REP, PEER_COMM_BASE + 2, local(a2), { qpn: 0x92 });
    send(CW.CM_ATTR_REP, PEER_COMM_BASE + 3, local(a3), { qpn: 0x93 });
    step();
    if (fw.rdmaCmDisconnect(a3) !== 0) throw new Error(`rdma-cm baseline: disconnect (${h.why()})`);
    // passive: one in REP_SENT, one ESTABLISHED
    send(CW.CM_ATTR_REQ, PEER_COMM_BASE + 4, 0, { qpn: 0x94 });
    send(CW.CM_ATTR_REQ, PEER_COMM_BASE + 5, 0, { qpn: 0x95, port: 4421 });
    step();
    const passive = (peer: number) => {
      for (let i = 0; i < M.CM_MAX_CONNS; i++) if (card.dv.getUint32(fw.rdmaCmConnAddr(i) + CW.CN_REMOTE_COMM_ID, true) === peer && fw.rdmaCmState(i) !== CmState.IDLE) return i;
      throw new Error("rdma-cm baseline: no passive connection");
    };
    const p5 = passive(PEER_COMM_BASE + 5);
    send(CW.CM_ATTR_RTU, PEER_COMM_BASE + 5, local(p5));
    step();
    const want = [[a1, CmState.REQ_SENT], [a2, CmState.ESTABLISHED], [a3, CmState.DISCONNECTING], [passive(PEER_COMM_BASE + 4), CmState.REP_SENT], [p5, CmState.ESTABLISHED]];
    for (const [id, st] of want) if (fw.rdmaCmState(id!) !== st) throw new Error(`rdma-cm baseline: connection ${id} in ${CmState[fw.rdmaCmState(id!)]}, wanted ${CmState[st!]}`);
    // the host consumed what was sent so far
    card.dv.setUint32(M.NET_TX_CTRL + 4, card.dv.getUint32(M.NET_TX_CTRL, true), true);
    card.dv.setUint32(M.RDMA_CTRL + W.RC_LOG_CONS, card.dv.getUint32(M.RDMA_CTRL + W.RC_LOG_PROD, true), true);
    for (let i = 0; i < M.CM_MAX_CONNS; i++) {
      const st = fw.rdmaCmState(i);
      if (st !== CmState.IDLE && st !== CmState.LISTEN) h.baseQps.add(card.dv.getUint32(fw.rdmaCmConnAddr(i) + CW.CN_LOCAL_QPN, true));
    }
    const g = card.guests[0]!;
    // Only the firmware writes these (the host: RX frames, through RxRing). Among them the RC
    // blocks of every QP the CM may hand to the RC engine (QPN 0x10 and up): the dirty pages
    // restore just what an input touched. On a build without the page list (the release
    // build, for the bench) the baseline's connected QPs get their whole block back and the
    // others only their control words: rcEnable clears their queues before any use.
    const writable: Range[] = [
      tracked(M.COUNTERS_BASE, M.QUEUE_TABLE_BASE - M.COUNTERS_BASE, "counters, globals, tables"),
      tracked(M.NET_TX_CTRL, 64, "TX ring control"), { ...range(M.NET_TX_SLOTS, M.NET_RING_ENTRIES * M.NET_SLOT_SIZE, "TX ring slots"), lazy: true },
      range(M.NET_RX_CTRL, 64, "RX ring control"), { ...range(M.NET_RX_SLOTS, M.NET_RING_ENTRIES * M.NET_SLOT_SIZE, "RX ring slots"), lazy: true },
      { ...range(CRC_LANE_TMP, M.RDMA_CTRL - CRC_LANE_TMP, "CRC kernel's lane spill"), lazy: true },
      tracked(M.RDMA_CTRL, M.RXLOG_BASE - M.RDMA_CTRL, "RDMA control and scratch"),
      { ...range(M.RXLOG_BASE, M.RXLOG_ENTRIES * M.RXLOG_ENTRY_SIZE, "receive result log"), lazy: true },
      tracked(M.QP_TABLE_BASE, M.MR_TABLE_BASE - M.QP_TABLE_BASE, "QP table, CM control and connections"),
      ...Array.from({ length: M.MAX_QPS - 0x10 }, (_, i): Range => {
        const qpn = 0x10 + i, base = M.RCQ_BASE + qpn * M.RCQ_SIZE;
        return h.baseQps.has(qpn) ? tracked(base, M.RCQ_SIZE, `RC block of QP ${qpn}`) : tracked(base, R.RCQ_SQ, `RC control words of QP ${qpn}`);
      }),
      ...Array.from({ length: M.MAX_QPS - 0x10 }, (_, i): Range[] => {
        const qpn = 0x10 + i, base = M.RCQ_BASE + qpn * M.RCQ_SIZE;
        return h.baseQps.has(qpn) ? [] : [{ ...range(base + R.RCQ_SQ, M.RCQ_SIZE - R.RCQ_SQ, `RC queues of QP ${qpn} (cleared by rcEnable before use)`), lazy: true }];
      }).flat(),
    ];
    const canaries = [
      range(g.base, g.size, "guest RAM"),
      range(0, 4096, "firmware static data"),
      range(M.MR_TABLE_BASE, M.MAX_MRS * M.MR_ENTRY_SIZE, "MR table"),
    ]; // the CRC tables and everything else: the full audit
    // only the firmware writes card memory here: with the page list, its per-input audit covers the canaries
    fc.freeze(writable, fc.tracking ? [] : canaries);
    h.rx = new RxRing(fc);
    h.baseNow = h.now;
    return h;
  }
  private baseNow = 0;

  /** Connection states and the receive log's drop reasons (baseline errors). */
  private why(): string {
    const fw = this.fc.card.fw, dv = this.fc.card.dv;
    const st = Array.from({ length: 8 }, (_, i) => CmState[fw.rdmaCmState(i)]).join(",");
    const prod = dv.getUint32(M.RDMA_CTRL + W.RC_LOG_PROD, true), reasons: string[] = [];
    for (let i = 0; i < prod; i++) reasons.push(String(dv.getUint32(M.RXLOG_BASE + (i % M.RXLOG_ENTRIES) * M.RXLOG_ENTRY_SIZE + W.RXL_REASON, true)));
    return `states ${st}; log reasons ${reasons.join(",")}`;
  }

  /** One MAD frame into the RX ring. */
  private pushMad(s: MadSpec, from: { ip: number[]; mac: number[] }, dmg: number, dval: number, plen: number, qkey: number): void {
    buildMad(this.mad, this.madDv, s, from);
    const fc = this.fc;
    this.rx.push((f) => {
      const len = buildFrame(fc, f, {
        opcode: W.Op.UD_SEND_ONLY, dqp: W.QP1, psn: 0, ackreq: false, seM: 0, plen, va: 0, key: 0, dlen: 0,
        qkey, srcQp: W.QP1, dmg, dv: dval,
      }, this.mad);
      if (from !== PEER) { // another sender: its MAC and IP (the ICRC covers the IP source: compute it again)
        fc.u8.set(from.mac, f + W.ETH_SRC_OFF);
        fc.u8.set(from.ip, f + IPO + W.IP_SRC_OFF);
        fc.card.dv.setUint16(f + IPO + W.IP_CSUM_OFF, ipChecksum(fc.u8, f + IPO));
        if (dmg % Dmg.COUNT < Dmg.DMG_AFTER) fixIcrc(fc, f, M.NET_FRAME_MAX);
      }
      return len;
    }, () => built.wrote);
  }

  // ---- generation ----
  generate(rng: Rng): Uint8Array {
    const ops: Op[] = [];
    const n = 3 + rng.small(16);
    for (let i = 0; i < n; i++) ops.push(...this.exchange(rng));
    return this.codec.encode({ header: Uint8Array.of(rng.next() & 0xff), ops });
  }

  /** A plausible CM exchange step: a MAD for a connection of the table (or a new REQ), a host call, time. */
  private exchange(rng: Rng): Op[] {
    const c = this.codec, ops: Op[] = [];
    const r = rng.below(20);
    if (r < 14) {
      const attr = rng.chance(0.9) ? rng.below(6) : rng.below(ATTRS.length);
      const conn = rng.chance(0.85) ? rng.below(8) : rng.pick([63, 64, rng.below(256)]);
      const broken = rng.chance(0.2);
      ops.push(c.op("mad", attr, conn, rng.chance(0.7) ? rng.below(8) : rng.next(), 0x80 + rng.below(0x80), rng.below(0x1000000),
        rng.pick([4420, 4420, 4421, rng.below(0x10000)]), rng.pick([0x37, 0x37, 0x17, 0x57, rng.below(256)]), rng.below(4) | ((rng.small(128) + 1) << 16),
        broken ? 1 + rng.below(7) : 0, rng.below(256), rng.below(256), rng.chance(0.9) ? 0 : 1,
        rng.chance(0.85) ? 0 : rng.below(Dmg.COUNT), rng.next(), rng.chance(0.9) ? 256 : rng.small(600), rng.chance(0.95) ? 0 : rng.next()));
      if (rng.chance(0.5)) ops.push(c.op("poll", rng.below(256)));
    } else if (r < 17) ops.push(c.op("time", rng.pick([1000, 1001, rng.small(20000)])));
    else if (r === 17) ops.push(c.op("connect", rng.pick([4420, 4421]), rng.below(4), rng.pick([1024, 4096, 256, rng.below(5000)])));
    else if (r === 18) ops.push(c.op("disconnect", rng.below(8)));
    else ops.push(c.op("release", rng.below(8)));
    return ops;
  }

  mutate(input: Uint8Array, rng: Rng, steps = 1): Uint8Array {
    let p = this.codec.decode(input);
    for (let k = 0; k < steps; k++) p = this.codec.mutate(p, rng, () => this.exchange(rng));
    return this.codec.encode(p);
  }

  // ---- running ----
  reset(): void {
    this.rx.restore();
    this.now = this.baseNow;
  }

  run(input: Uint8Array): void {
    const fc = this.fc, card = fc.card, fw = card.fw, dv = card.dv, rx = this.rx;
    this.reset();
    const p = this.codec.decode(input);
    rx.begin();
    for (let q = 0; q < M.MAX_QPS; q++) this.qpBefore[q] = fw.rdmaQpState(q);
    const connAddr = (id: number) => fw.rdmaCmConnAddr(id);
    for (const op of p.ops) {
      const v = op.vals;
      switch (OPS[op.code]!.name) {
        case "mad": {
          const attr = ATTRS[v[0]! % ATTRS.length]!;
          const id = v[1]!;
          let ours = v[2]!, peer = (PEER_COMM_BASE + v[2]!) >>> 0;
          if (id < M.CM_MAX_CONNS) {
            const a = connAddr(id);
            ours = dv.getUint32(a + CW.CN_LOCAL_COMM_ID, true);
            const rc = dv.getUint32(a + CW.CN_REMOTE_COMM_ID, true);
            if (rc !== 0 && v[2]! < 8) peer = rc; // the peer's own comm ID for this connection
          }
          this.pushMad({ attr, peer, ours, qpn: v[3]! & 0xffffff, psn: v[4]! & 0xffffff, port: v[5]!, mtu: v[6]!, pd: v[7]!, hdr: v[8]!, at: v[9]!, val: v[10]! },
            v[11]! & 1 ? OTHER : PEER, v[12]!, v[13]!, Math.min(v[14]!, 1500), v[15]! || W.GSI_QKEY);
          break;
        }
        case "poll": fw.rdmaRxPoll(v[0]! + 1); this.now += 1000; fw.rdmaCmPoll(this.now); break;
        case "time": this.now += (v[0]! + 1) * 1000; fw.rdmaCmPoll(this.now); break;
        case "connect": fw.rdmaCmConnect(v[0]!, v[1]!, 32, 31, 1, v[2]!, ipWire(PEER.ip), macHi(PEER.mac), macLo(PEER.mac)); break;
        case "disconnect": fw.rdmaCmDisconnect(v[0]!); break;
        case "release": fw.rdmaCmRelease(v[0]!); break;
      }
    }
    for (let i = 0; i < 8 && rx.pending() !== 0; i++) fw.rdmaRxPoll(1024);
    fw.rdmaCmPoll(this.now);
    rx.check();
    this.invariants();
    fc.auditCanaries();
  }

  private invariants(): void {
    const fc = this.fc, fw = fc.card.fw, dv = fc.card.dv;
    const held = new Map<number, number>();
    for (let id = 0; id < M.CM_MAX_CONNS; id++) {
      const a = fw.rdmaCmConnAddr(id);
      const st = dv.getUint32(a + CW.CN_STATE, true), role = dv.getUint32(a + CW.CN_ROLE, true);
      const name = `connection ${id} (${CmState[st] ?? st}, role ${CmRole[role] ?? role})`;
      if (CmState[st] === undefined) throw new Finding("cm", `${name}: no CmState`);
      if (CmRole[role] === undefined) throw new Finding("cm", `${name}: no CmRole`);
      if (st === CmState.IDLE) {
        if (role !== CmRole.NONE) throw new Finding("cm", `${name}: an IDLE slot with a role`);
        continue;
      }
      const passive = st === CmState.LISTEN || st === CmState.REQ_RCVD || st === CmState.REP_SENT;
      const active = st === CmState.REQ_SENT || st === CmState.REP_RCVD || st === CmState.REJECTED || st === CmState.TIMED_OUT;
      if ((passive && role !== CmRole.PASSIVE) || (active && role !== CmRole.ACTIVE) || role === CmRole.NONE) throw new Finding("cm", `${name}: role does not fit the state`);
      if (id === M.CM_MAX_CONNS - 1) throw new Finding("cm", `${name}: the scratch slot holds a connection`);
      if ((dv.getUint32(a + CW.CN_LOCAL_COMM_ID, true) & 0xff) !== id) throw new Finding("cm", `${name}: local comm ID 0x${dv.getUint32(a + CW.CN_LOCAL_COMM_ID, true).toString(16)} names another slot`);
      if (st === CmState.LISTEN) continue;
      const qpn = dv.getUint32(a + CW.CN_LOCAL_QPN, true);
      if (qpn < QPN_FIRST || qpn >= M.MAX_QPS) throw new Finding("cm", `${name}: QP ${qpn} outside the CM's QPs`);
      if (held.has(qpn)) throw new Finding("cm", `${name}: QP ${qpn} also held by connection ${held.get(qpn)}`);
      held.set(qpn, id);
      const qs = fw.rdmaQpState(qpn);
      const want: number[] = st === CmState.REQ_SENT || st === CmState.REQ_RCVD ? [QpState.INIT]
        : st === CmState.REP_SENT ? [QpState.RTR]
        : st === CmState.ESTABLISHED || st === CmState.DISCONNECTING || st === CmState.REP_RCVD ? [QpState.RTS]
        : [QpState.ERR, QpState.RESET];
      if (!want.includes(qs)) throw new Finding("cm", `${name}: its QP ${qpn} is in state ${qs}, expected ${want.join(" or ")}`);
    }
    const q1 = fw.rdmaQpAddr(W.QP1);
    if (fw.rdmaQpState(W.QP1) !== QpState.RTS || dv.getUint32(q1 + QP_TRANSPORT, true) !== W.Transport.UD || dv.getUint32(q1 + QP_QKEY, true) !== W.GSI_QKEY) {
      throw new Finding("cm", `QP1 is no longer the GSI UD QP in RTS (state ${fw.rdmaQpState(W.QP1)})`);
    }
    for (let q = 0; q < M.MAX_QPS; q++) {
      const st = fw.rdmaQpState(q);
      if (st !== this.qpBefore[q] && !held.has(q) && !this.baseQps.has(q) && st !== QpState.RESET) {
        throw new Finding("cm", `QP ${q} moved ${this.qpBefore[q]} → ${st} with no connection holding it`);
      }
      if (q < QPN_FIRST && st !== this.qpBefore[q]) throw new Finding("cm", `QP ${q} (below the CM's QPs) moved ${this.qpBefore[q]} → ${st}`);
    }
  }

  explain(input: Uint8Array): string[] { return this.codec.explain(input); }
  collect(seen: Uint8Array): number { return this.fc.collect(seen); }
  byFile(seen: Uint8Array, perFunction?: boolean): Record<string, [number, number]> { return this.fc.byFile(seen, perFunction); }
  fullAudit(): void { this.fc.auditFull(); }
  restoreAll(): void { this.fc.restoreAll(); this.rx.slotBytes.fill(0); }
}

export const rdmaCmTarget: Target = {
  name: "rdma-cm",
  about: "RDMA-CM MADs (REQ/REP/RTU/REJ/DREQ/DREP, NVMe-oF private data) to QP1, connections in every state; CM table and QP states consistent",
  create: (opts) => RdmaCmHarness.create(opts?.module),
};
