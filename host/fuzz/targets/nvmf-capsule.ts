// nvmf-capsule: NVMe-oF command capsules (NVMe-oF 1.1 §2.1, RDMA transport §7.3) sent as RC
// SENDs into the storage-side NIC on connected QPs, through the NIC firmware (receive buffers →
// command rings, WQE fetch, DIF) and the storage controllers (host/target/). One card plays both
// ends over a loopback: host QPs (the NVMe-oF host, RC engine, a memory region over guest RAM
// that keyed SGLs name) and target QPs bound to two controllers (admin pair → controller 0, I/O
// pair → controller 1); every frame the card transmits is put back into its own RX ring, so the
// RC engine answers the NIC's RDMA READs and takes its RDMA WRITEs and response SENDs.
//
// An input is a header (bit 0: connect first — Fabrics Connect on the admin queue, Property Set
// CC.EN = 1, Connect on the I/O queue, run to completion; bit 1: end-to-end protection on the
// namespaces; bit 2: tail fast path off; bit 3: the NIC's DIF check off) and a program of
// capsules built from the spec layouts — Connect / Property Get / Set, Identify, Get / Set
// Features, Keep Alive, Read, Write, Flush, Write Zeroes, DSM, any opcode — with mutated CIDs,
// NSIDs, LBAs, NLBs, SGL descriptors (keyed with good or bad address / length / key,
// in-capsule with good or bad offset / length, other types), in-capsule data lengths and one
// byte anywhere; plus rounds and virtual time. Namespaces: NSID 1 (512-byte blocks) and NSID 2
// (4096-byte blocks), 64 KiB each, fresh per input.
//
// Executions: one per input (the preamble's three commands, then about 10 capsules).
//
// Oracles: no trap; the controllers never throw; the memory audit (guest RAM outside the
// memory region, firmware statics, every other byte of card memory outside what the NIC, the
// RC engine and the rings own); every loopback frame accounted for once by the receive path
// (roce-rx's RxRing); every response capsule names a CID a capsule of its queue carried, no more
// often than it was sent; on a queue whose QPs stayed in RTS every capsule got exactly one
// response or is a counted drop (err_nic_short_capsule / unbound_qp / cmd_ring_full); after the
// run settles the controllers hold no command and no staging, and every ring balances (command
// ring produced = consumed = buffers returned, send queue head = tail).
import * as M from "../../../assembly/memmap.js";
import * as W from "../../../assembly/rdma/wire.js";
import * as R from "../../../assembly/rdma/rcdefs.js";
import * as N from "../../../assembly/nic/defs.js";
import * as S from "../../../assembly/nvme/spec.js";
import * as F from "../../../assembly/nvmeof/defs.js";
import * as D from "../../target/defs.js";
import { NVME_REG_CC, NVME_REG_CSTS } from "../../../assembly/nvme/regs.js";
import { Counter } from "../../../assembly/counters.js";
import { MemoryBackend } from "../../backends/memory.js";
import { StorageController } from "../../target/controller.js";
import { Subsystem, DEFAULT_SUBNQN } from "../../target/subsystem.js";
import { FuzzCard, Finding, range, tracked, type Range } from "../card.js";
import { ProgramCodec, type Op, type OpSpec } from "../program.js";
import type { Rng } from "../rng.js";
import type { Harness, Target } from "../target.js";
import { RxRing, LOCAL, CRC_LANE_TMP, VA0 } from "./roce-rx.js";

const RAM = 0x40000;
/** Guest RAM the host's remote-access memory region covers (VA0 + offset): the buffers keyed SGLs name. */
const DATA_BYTES = 0x10000;
// The host's own buffers, in a region with local access only (what the target writes cannot reach them):
const CAP_BASE = 0x10000, CAP_SLOT = 0x1200, MAX_CAPS = 24; // capsules (SQE + in-capsule data)
const RESP_BASE = 0x2c000, RESP_SLOT = 64, RECVS = 32; // response buffers, posted once at the baseline
const LOCAL_END = RESP_BASE + 2 * RECVS * RESP_SLOT; // guest RAM after it: a canary
const MTU = 1024;
/** Host QP, target QP of each queue: 0 = admin, 1 = I/O. */
const PAIRS = [[0x11, 0x21], [0x12, 0x22]] as const;
const HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:fuzz-host";
const NS_BYTES = 0x10000;
/** Feedback slots above the edge map for what the controllers did (commands, errors by reason, response statuses). */
const FEATURES = 4096;
/** Drops the NIC counts instead of a command entry (nic.ts command()). */
const NIC_DROPS = [Counter.err_nic_short_capsule, Counter.err_nic_unbound_qp, Counter.err_nic_cmd_ring_full];

/** Capsule templates (the `kind` field). */
enum K { CONNECT_ADMIN, CONNECT_IO, PROP_SET, PROP_GET, IDENTIFY, GET_FEATURES, SET_FEATURES, KEEP_ALIVE, READ, WRITE, FLUSH, WRITE_ZEROES, DSM, RAW, COUNT }
/** SGL forms (the `sgl` field): keyed at a good place, keyed raw fields, in-capsule, in-capsule raw, null keyed, another type. */
enum G { KEYED, KEYED_RAW, INCAPSULE, INCAPSULE_RAW, NULL, TYPE, COUNT }

const CAPSULE_FIELDS = [
  { name: "queue", width: 1, interesting: [0, 1] },
  { name: "kind", width: 1, interesting: [K.READ, K.WRITE, K.IDENTIFY, K.CONNECT_IO, K.DSM, K.RAW] },
  { name: "opc", width: 1, interesting: [0, 1, 2, 6, 8, 9, 0x0a, 0x18, 0x7f, 0x80, 0xff] }, // RAW's opcode; CNS / FID / property otherwise
  { name: "cid", width: 2, interesting: [0, 1, 0xffff, 0x8000] },
  { name: "nsid", width: 1, interesting: [1, 2, 0, 3, 0xff] }, // 0xff: broadcast
  { name: "slba", width: 4, interesting: [0, 1, 15, 16, 127, 128, 0xffffffff, 0x80000000] },
  { name: "nlb", width: 2, interesting: [0, 1, 7, 15, 63, 127, 255, 0xffff] }, // 0's based; DSM: NR
  { name: "sgl", width: 1, interesting: [G.KEYED, G.KEYED, G.INCAPSULE, G.KEYED_RAW, G.INCAPSULE_RAW, G.NULL, G.TYPE] },
  { name: "addr", width: 4, interesting: [0, 1, DATA_BYTES - 512, DATA_BYTES, CAP_BASE, 0xffffffff, 4096, 0x80000000] }, // offset from VA0, or the raw address
  { name: "len", width: 4, interesting: [0, 1, 512, 1024, 4096, 0x1000000, 0xffffff, 0xffffffff, 16, 1040] }, // 0: the command's size
  { name: "key", width: 4, interesting: [0, 0, 1, 0xffffffff, 0x100] }, // 0: the host's key
  { name: "data", width: 2, interesting: [0, 0, 16, 64, 1024, 4096, 4097, 4160, 0x1100] }, // in-capsule bytes sent (0: what the SGL says)
  { name: "id", width: 1, interesting: [0x40, 0x4f, 0x01, 0x00, 0x41, 0x50, 0xff, 0x10, 0x20, 0x30] }, // G.TYPE's identifier
  { name: "at", width: 1, interesting: [0, 1, 2, 3, 4, 24, 39, 40, 44, 48, 63] }, // one byte of the SQE (with `val`; at = val = 0: none)
  { name: "val", width: 1, interesting: [0, 1, 0x40, 0x80, 0xff] },
  { name: "flags", width: 1, interesting: [0, 1, 2, 4, 8] }, // bit 0 fused, bit 1 PSDT PRP, bit 2 bad NQN, bit 3 Connect CNTLID other
] as const;

const OPS: OpSpec[] = [
  { name: "capsule", fields: CAPSULE_FIELDS },
  { name: "rounds", fields: [{ name: "n", width: 1, interesting: [0, 1, 2, 8, 255] }] },
  { name: "time", fields: [{ name: "us", width: 2, interesting: [1, 10, 100, 1000, 0xffff] }] },
];

class NvmfCapsuleHarness implements Harness {
  readonly codec = new ProgramCodec(OPS, 1);
  readonly unit = "edges";
  private rx!: RxRing;
  private key = 0; // the data region's (keyed SGLs)
  private lkey = 0; // the capsule and response buffers' (local)
  private ctrls: StorageController[] = [];
  private readonly nsBytes = [new Uint8Array(NS_BYTES), new Uint8Array(NS_BYTES)];
  private now = 0;
  private caps = 0; // capsule buffers used this input
  /** Per queue: CIDs sent (count), responses by CID (count), a host completion failed. */
  private sent = [new Map<number, number>(), new Map<number, number>()];
  private resp = [new Map<number, number>(), new Map<number, number>()];
  private sentN = [0, 0];
  private respN = [0, 0];
  private broken = [false, false];
  private readonly sqeBuf = new Uint8Array(S.SQE_SIZE);
  private readonly sqeDv = new DataView(this.sqeBuf.buffer);
  private readonly connData: Uint8Array;
  private readonly before = new Float64Array(M.COUNTERS_MAX);
  /** Response statuses seen this input, by queue: (queue << 15 | status). */
  private readonly statuses = new Set<number>();
  private readonly featureIds = new Map<string, number>();

  private constructor(readonly fc: FuzzCard) {
    this.connData = new Uint8Array(F.CONN_DATA_SIZE);
    this.connData.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], F.CD_HOSTID);
    this.connData.set(new TextEncoder().encode(DEFAULT_SUBNQN), F.CD_SUBNQN);
    this.connData.set(new TextEncoder().encode(HOSTNQN), F.CD_HOSTNQN);
  }

  get total(): number { return this.fc.edgesTotal; }
  get mapSize(): number { return M.FUZZ_COV_SIZE + FEATURES; }

  static async create(module?: WebAssembly.Module): Promise<NvmfCapsuleHarness> {
    const fc = await FuzzCard.create({ guests: [{ ramBytes: RAM }], disks: [] }, module);
    const card = fc.card, fw = card.fw, dv = card.dv;
    const ok = (v: number, what: string) => { if (v !== 0) throw new Error(`nvmf-capsule baseline: ${what} (${v})`); };
    if (fw.nicInit(N.NGF_TAIL_FAST_PATH | N.NGF_DIF_CHECK) !== 0) throw new Error("nvmf-capsule baseline: nicInit");
    for (let k = 0; k < 2; k++) if (fw.nicCtrlEnable(k) === 0) throw new Error("nvmf-capsule baseline: nicCtrlEnable");
    // RC QPs in pairs (IBTA §10.3.1 RESET → INIT → RTR → RTS), each the other's destination
    const rc = (qpn: number, dest: number, rpsn: number, spsn: number) => {
      ok(fw.rdmaQpModify(qpn, 1, W.Transport.RC, 0, 0), `QP ${qpn} INIT`);
      ok(fw.rdmaQpModify(qpn, 2, MTU, dest, rpsn), `QP ${qpn} RTR`);
      ok(fw.rdmaQpModify(qpn, 3, 7, 7, spsn), `QP ${qpn} RTS`);
      ok(fw.rdmaRcEnable(qpn, 20_000, 4, 1, R.RC_SQ_DEPTH), `QP ${qpn} RC enable`);
      const d = fw.rdmaRcBlock(qpn) + R.RCC_TXD;
      card.u8.set(LOCAL.mac, d + W.TXD_DST_MAC); card.u8.set(LOCAL.mac, d + W.TXD_SRC_MAC);
      card.u8.set(LOCAL.ip, d + W.TXD_SRC_IP); card.u8.set(LOCAL.ip, d + W.TXD_DST_IP);
      dv.setUint16(d + W.TXD_SPORT, 0xc000 | qpn, true); dv.setUint8(d + W.TXD_TTL, 64); dv.setUint16(d + W.TXD_PKEY, 0xffff, true);
    };
    PAIRS.forEach(([h, t], i) => { rc(h, t, 1000 * (i + 1), 0xfffff0 + i); rc(t, h, 0xfffff0 + i, 1000 * (i + 1)); });
    PAIRS.forEach(([, t], k) => ok(fw.nicBindQp(t, k), `bind QP ${t}`));
    const h = new NvmfCapsuleHarness(fc);
    h.key = fw.rdmaMrRegister(0, 0, DATA_BYTES, Math.floor(VA0 / 2 ** 32), VA0 >>> 0, R.MR_LOCAL_WRITE | R.MR_REMOTE_READ | R.MR_REMOTE_WRITE);
    const lva = VA0 + CAP_BASE;
    h.lkey = fw.rdmaMrRegister(0, CAP_BASE, LOCAL_END - CAP_BASE, Math.floor(lva / 2 ** 32), lva >>> 0, R.MR_LOCAL_WRITE);
    if (h.key === 0 || h.lkey === 0) throw new Error("nvmf-capsule baseline: MR");
    // response buffers of the host QPs, posted once: an input sends fewer capsules than this
    PAIRS.forEach(([hq], p) => {
      const blk = fw.rdmaRcBlock(hq);
      for (let j = 0; j < RECVS; j++) {
        const e = blk - R.RCQ_CTRL + R.RCQ_RQ + j * R.RWQE_SIZE;
        dv.setBigUint64(e + R.RWQE_WRID, BigInt(j), true);
        dv.setBigUint64(e + R.RWQE_LADDR, BigInt(VA0 + RESP_BASE + (p * RECVS + j) * RESP_SLOT), true);
        dv.setUint32(e + R.RWQE_LKEY, h.lkey, true);
        dv.setUint32(e + R.RWQE_LEN, RESP_SLOT, true);
      }
      if (fw.rdmaRcPostRecv(hq, RECVS) !== RECVS) throw new Error("nvmf-capsule baseline: post recv");
    });
    const g = card.guests[0]!;
    for (let i = 0; i < g.size; i++) card.u8[g.base + i] = (i * 13 + 7) & 0xff;
    // only the firmware writes these (the host's send queue entries: send() says so)
    const rcq = (qpn: number) => tracked(fw.rdmaRcBlock(qpn) - R.RCQ_CTRL, R.RCQ_END, `RC queues of QP ${qpn}`);
    const lazy = (r: Range): Range => ({ ...r, lazy: true });
    const writable: Range[] = [
      tracked(M.COUNTERS_BASE, M.QUEUE_TABLE_BASE - M.COUNTERS_BASE, "counters, globals, tables"),
      tracked(M.NET_TX_CTRL, 64, "TX ring control"), lazy(range(M.NET_TX_SLOTS, M.NET_RING_ENTRIES * M.NET_SLOT_SIZE, "TX ring slots")),
      range(M.NET_RX_CTRL, 64, "RX ring control"), lazy(range(M.NET_RX_SLOTS, M.NET_RING_ENTRIES * M.NET_SLOT_SIZE, "RX ring slots")),
      lazy(range(CRC_LANE_TMP, M.RDMA_CTRL - CRC_LANE_TMP, "CRC kernel's lane spill")),
      tracked(M.RDMA_CTRL, M.RXLOG_BASE - M.RDMA_CTRL, "RDMA control and scratch"),
      lazy(range(M.RXLOG_BASE, M.RXLOG_ENTRIES * M.RXLOG_ENTRY_SIZE, "receive result log")),
      tracked(M.QP_TABLE_BASE, M.RCQ_BASE - M.QP_TABLE_BASE, "QP table, CM, MR table"),
      ...PAIRS.flat().map(rcq),
      range(M.NIC_BASE, M.NIC_GLOBALS_SIZE, "NIC globals"),
      // The controllers (TypeScript) write their blocks and rings: copied back whole. They write
      // staging only inside what their allocator handed out: run() gives those extents back. The
      // firmware's writes (receive buffers, staging, rings) are in the dirty pages.
      ...[0, 1].map((k) => range(M.NIC_CTRLS + k * M.NIC_CTRL_SIZE, M.NIC_CTRL_SIZE, `NIC controller ${k} block and rings`)),
      lazy(range(M.NIC_RECV_BASE, 2 * M.NIC_RECV_DEPTH * M.NIC_RECV_SLOT, "NIC receive buffers of the two target QPs")),
      lazy(range(M.NIC_STAGE_BASE, 2 * M.NIC_STAGE_SIZE, "staging windows of controllers 0 and 1")),
      range(g.base, LOCAL_END, "the host's buffers (data, capsules, responses)"),
    ];
    const canaries = [range(g.base + LOCAL_END, g.size - LOCAL_END, "guest RAM outside the host's buffers"), range(0, 4096, "firmware static data")];
    fc.freeze(writable, canaries);
    h.rx = new RxRing(fc);
    return h;
  }

  // ---- generation ----
  generate(rng: Rng): Uint8Array {
    const ops: Op[] = [];
    const n = 2 + rng.small(14);
    for (let i = 0; i < n; i++) ops.push(...this.command(rng));
    return this.codec.encode({ header: Uint8Array.of(rng.chance(0.9) ? 1 | (rng.below(8) << 1) : rng.below(16)), ops });
  }

  /** One capsule of a template with (mostly) sane fields, sometimes rounds or time after it. */
  private command(rng: Rng): Op[] {
    const kind = rng.chance(0.1) ? rng.below(K.COUNT) : rng.pick([K.READ, K.READ, K.WRITE, K.WRITE, K.FLUSH, K.WRITE_ZEROES, K.DSM, K.IDENTIFY, K.GET_FEATURES, K.SET_FEATURES, K.KEEP_ALIVE, K.PROP_GET, K.PROP_SET]);
    const admin = kind <= K.KEEP_ALIVE && kind !== K.CONNECT_IO;
    const ns = 1 + rng.below(2);
    const nlb = rng.small(ns === 1 ? 31 : 7);
    const sgl = kind === K.WRITE && rng.chance(0.4) ? G.INCAPSULE : rng.chance(0.85) ? G.KEYED : rng.below(G.COUNT);
    const opc = kind === K.IDENTIFY ? rng.pick([0, 1, 2, 3, rng.below(256)]) : kind === K.PROP_GET || kind === K.PROP_SET ? rng.pick([0, 8, NVME_REG_CC, NVME_REG_CSTS, 0x24, rng.below(256)])
      : kind === K.GET_FEATURES || kind === K.SET_FEATURES ? rng.pick([7, 0x0b, 0x0f, 6, rng.below(256)]) : rng.below(256);
    const dmg = rng.chance(0.8);
    const ops = [this.codec.op("capsule", admin ? 0 : 1, kind, opc, rng.below(0x10000), ns, rng.below(ns === 1 ? 128 : 16), nlb, sgl,
      rng.below(DATA_BYTES) & ~511, 0, 0, 0, rng.pick([0x40, 0x4f, 0x01, rng.below(256)]), dmg ? 0 : rng.below(64), dmg ? 0 : rng.next() & 0xff,
      rng.chance(0.9) ? 0 : 1 << rng.below(4))];
    if (rng.chance(0.25)) ops.push(this.codec.op("rounds", rng.small(16)));
    if (rng.chance(0.03)) ops.push(this.codec.op("time", rng.small(2000)));
    return ops;
  }

  mutate(input: Uint8Array, rng: Rng, steps = 1): Uint8Array {
    let p = this.codec.decode(input);
    for (let k = 0; k < steps; k++) p = this.codec.mutate(p, rng, () => this.command(rng));
    return this.codec.encode(p);
  }

  // ---- the capsule builder ----

  /** The SQE (and its in-capsule data) of capsule op v into host buffer b; returns the bytes to SEND and the CID. */
  private build(v: number[], b: number): { len: number; cid: number } {
    const u8 = this.fc.u8, sqe = this.sqeBuf, dv = this.sqeDv;
    sqe.fill(0);
    const kind = v[1]! % K.COUNT, sel = v[2]!, cid = v[3]!, nsid = v[4] === 0xff ? S.NSID_BROADCAST : v[4]!;
    const slba = v[5]!, nlb = v[6]!, sgl = v[7]! % G.COUNT, flags = v[15]!;
    const bs = nsid === 2 ? 4096 : 512;
    let opc = sel, xfer = 0, data: Uint8Array | null = null;
    const fab = (t: number) => { opc = F.OPC_FABRICS; sqe[F.FAB_FCTYPE] = t; };
    switch (kind) {
      case K.CONNECT_ADMIN: case K.CONNECT_IO: {
        fab(F.FCTYPE_CONNECT);
        dv.setUint16(F.CONN_QID, kind === K.CONNECT_ADMIN ? 0 : 1, true);
        dv.setUint16(F.CONN_SQSIZE, 31, true);
        dv.setUint32(F.CONN_KATO, 120_000, true);
        data = this.connData;
        data.fill(0, F.CD_CNTLID, F.CD_CNTLID + 2);
        const cntlid = flags & 8 ? slba & 0xffff : kind === K.CONNECT_ADMIN ? F.CNTLID_DYNAMIC : 1; // a fresh subsystem's first CNTLID
        new DataView(data.buffer).setUint16(F.CD_CNTLID, cntlid, true);
        data[F.CD_SUBNQN + 5] = flags & 4 ? 0x21 : DEFAULT_SUBNQN.charCodeAt(5);
        xfer = F.CONN_DATA_SIZE;
        break;
      }
      case K.PROP_SET: fab(F.FCTYPE_PROPERTY_SET); sqe[F.PROP_ATTRIB] = nlb & 1; dv.setUint32(F.PROP_OFFSET, sel, true); dv.setUint32(F.PROP_VALUE, sel === NVME_REG_CC ? 0x460001 : slba, true); break;
      case K.PROP_GET: fab(F.FCTYPE_PROPERTY_GET); sqe[F.PROP_ATTRIB] = nlb & 1; dv.setUint32(F.PROP_OFFSET, sel, true); break;
      case K.IDENTIFY: opc = S.ADM_IDENTIFY; dv.setUint32(S.SQE_CDW10, sel, true); dv.setUint32(S.SQE_NSID, nsid, true); xfer = S.IDENTIFY_SIZE; break;
      case K.GET_FEATURES: opc = S.ADM_GET_FEATURES; dv.setUint32(S.SQE_CDW10, sel | ((nlb & 7) << D.GET_FEAT_SEL_SHIFT), true); break;
      case K.SET_FEATURES: opc = S.ADM_SET_FEATURES; dv.setUint32(S.SQE_CDW10, sel, true); dv.setUint32(S.SQE_CDW11, slba, true); break;
      case K.KEEP_ALIVE: opc = D.ADM_KEEP_ALIVE; break;
      case K.READ: case K.WRITE: case K.WRITE_ZEROES:
        opc = kind === K.READ ? S.IO_READ : kind === K.WRITE ? S.IO_WRITE : S.IO_WRITE_ZEROES;
        dv.setUint32(S.SQE_NSID, nsid, true); dv.setUint32(D.CDW10_SLBA_LO, slba, true); dv.setUint32(S.SQE_CDW12, nlb, true);
        xfer = kind === K.WRITE_ZEROES ? 0 : (nlb + 1) * bs;
        break;
      case K.FLUSH: opc = S.IO_FLUSH; dv.setUint32(S.SQE_NSID, nsid, true); break;
      case K.DSM: {
        opc = S.IO_DSM; dv.setUint32(S.SQE_NSID, nsid, true);
        const nr = nlb & 3;
        dv.setUint32(S.SQE_CDW10, nr, true); dv.setUint32(S.SQE_CDW11, S.DSM_AD, true);
        xfer = (nr + 1) * S.DSM_RANGE_SIZE;
        data = new Uint8Array(xfer);
        const ddv = new DataView(data.buffer);
        for (let r = 0; r <= nr; r++) { ddv.setUint32(r * 16 + S.DSM_RANGE_NLB, 1 + r, true); ddv.setUint32(r * 16 + S.DSM_RANGE_SLBA, (slba + r * 3) >>> 0, true); }
        break;
      }
      case K.RAW: dv.setUint32(S.SQE_NSID, nsid, true); dv.setUint32(S.SQE_CDW10, slba, true); dv.setUint32(S.SQE_CDW12, nlb, true); break;
    }
    const psdt = flags & 2 ? 0 : F.CDW0_PSDT_SGL;
    dv.setUint32(S.SQE_CDW0, (opc | ((flags & 1) << S.CDW0_FUSE_SHIFT) | psdt | (cid << S.CDW0_CID_SHIFT)) >>> 0, true);
    // the data descriptor (SGL1 at byte 24): NVMe-oF §7.3.2, base §4.1.2
    const o = F.SQE_SGL1, addr = v[8]!, len = v[9]! || xfer, key = v[10]! || this.key;
    let inl = 0;
    switch (sgl) {
      case G.KEYED: case G.KEYED_RAW: {
        const off = Math.max(0, Math.min(addr % DATA_BYTES, DATA_BYTES - xfer)); // a good buffer holds the whole transfer
        const a = sgl === G.KEYED ? VA0 + off : addr;
        dv.setUint32(o + F.SGL_ADDR, a >>> 0, true); dv.setUint32(o + F.SGL_ADDR + 4, Math.floor(a / 2 ** 32), true);
        sqe[o + 8] = len & 0xff; sqe[o + 9] = (len >>> 8) & 0xff; sqe[o + 10] = (len >>> 16) & 0xff;
        dv.setUint32(o + F.SGL_KEYED_KEY, key, true);
        sqe[o + F.SGL_ID] = v[12] === F.SGL_ID_KEYED_INV ? F.SGL_ID_KEYED_INV : F.SGL_ID_KEYED;
        if (data && sgl === G.KEYED) u8.set(data, this.fc.card.guests[0]!.base + off); // the host's buffer holds the data
        break;
      }
      case G.INCAPSULE: case G.INCAPSULE_RAW:
        dv.setUint32(o + F.SGL_ADDR, sgl === G.INCAPSULE ? 0 : addr, true);
        dv.setUint32(o + F.SGL_LEN, len, true);
        sqe[o + F.SGL_ID] = F.SGL_ID_INCAPSULE;
        inl = sgl === G.INCAPSULE ? Math.min(len, F.INCAPSULE_MAX) : 0;
        break;
      case G.NULL: sqe[o + F.SGL_ID] = F.SGL_ID_KEYED; break;
      case G.TYPE: dv.setUint32(o + F.SGL_LEN, len, true); sqe[o + F.SGL_ID] = v[12]!; break;
    }
    if (v[13] !== 0 || v[14] !== 0) sqe[v[13]! % S.SQE_SIZE] = v[14]!;
    const dataLen = Math.min(v[11]! || inl, CAP_SLOT - S.SQE_SIZE);
    u8.set(sqe, b);
    if (dataLen > 0) {
      // in-capsule data: the template's (Connect data, DSM ranges) or the fill already in the buffer
      if (data) u8.set(data.subarray(0, Math.min(dataLen, data.length)), b + S.SQE_SIZE);
    }
    return { len: S.SQE_SIZE + dataLen, cid: dv.getUint16(S.SQE_CID, true) };
  }

  /** SEND capsule op v on queue p's host QP. */
  private send(v: number[]): void {
    if (this.caps >= MAX_CAPS) return;
    const p = v[0]! & 1, card = this.fc.card, dv = card.dv, fw = card.fw;
    const g = card.guests[0]!;
    const off = CAP_BASE + this.caps++ * CAP_SLOT;
    const { len, cid } = this.build(v, g.base + off);
    const hq = PAIRS[p]![0], blk = fw.rdmaRcBlock(hq);
    const tail = dv.getUint32(blk + R.RCC_SQ_TAIL, true);
    const e = blk - R.RCQ_CTRL + R.RCQ_SQ + (tail % R.RC_SQ_DEPTH) * R.SWQE_SIZE;
    card.u8.fill(0, e, e + R.SWQE_SIZE);
    this.fc.hostWrote(e, R.SWQE_SIZE);
    dv.setBigUint64(e + R.SWQE_WRID, BigInt(0x10000 + cid), true);
    dv.setUint32(e + R.SWQE_OP, R.WrOp.SEND, true);
    dv.setUint32(e + R.SWQE_LKEY, this.lkey, true);
    dv.setBigUint64(e + R.SWQE_LADDR, BigInt(VA0 + off), true);
    dv.setUint32(e + R.SWQE_LEN, len, true);
    if (fw.rdmaRcPostSend(hq, 1) !== 1) { this.broken[p] = true; return; }
    const m = this.sent[p]!;
    m.set(cid, (m.get(cid) ?? 0) + 1);
    this.sentN[p]!++;
  }

  // ---- the world's round ----

  /** One round at this.now: the card's RDMA round (receive path, RC engine, NIC), the controllers, the NIC's fetch, the loopback, the host's completions. Returns work done. */
  private round(): number {
    const fw = this.fc.card.fw;
    this.fc.card.now = this.now;
    let work = fw.rdmaPoll(256, this.now);
    let wqes = 0;
    for (const c of this.ctrls) {
      try { wqes += c.step(); } catch (e) { throw new Finding("controller", `controller ${c.k} threw: ${(e as Error).message}`); }
    }
    if (wqes > 0) work += fw.nicPoll(256, this.now) + wqes;
    work += this.loopback();
    work += this.reapHost();
    return work;
  }

  /** Every transmitted frame into the RX ring (while it has room); returns frames moved. */
  private loopback(): number {
    const dv = this.fc.card.dv, u8 = this.fc.u8;
    const prod = dv.getUint32(M.NET_TX_CTRL, true);
    let cons = dv.getUint32(M.NET_TX_CTRL + 4, true), n = 0;
    while (cons !== prod && this.rx.pending() < M.NET_RING_ENTRIES) {
      const s = M.NET_TX_SLOTS + (cons % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
      const len = Math.min(dv.getUint32(s + M.NET_SLOT_LEN_OFF, true), M.NET_FRAME_MAX);
      this.rx.push((f) => { u8.copyWithin(f, s + M.NET_SLOT_HDR, s + M.NET_SLOT_HDR + len); return len; });
      cons = (cons + 1) >>> 0;
      n++;
    }
    dv.setUint32(M.NET_TX_CTRL + 4, cons, true);
    return n;
  }

  /** The host QPs' completions: response capsules counted by CID, an error marks the queue broken. */
  private reapHost(): number {
    const card = this.fc.card, dv = card.dv, fw = card.fw;
    let n = 0;
    PAIRS.forEach(([hq], p) => {
      const c = fw.rdmaRcBlock(hq);
      const prod = dv.getUint32(c + R.RCC_CQ_PROD, true);
      let cons = dv.getUint32(c + R.RCC_CQ_CONS, true);
      for (; cons !== prod; cons = (cons + 1) >>> 0, n++) {
        const e = c - R.RCQ_CTRL + R.RCQ_CQ + (cons % R.RC_CQ_DEPTH) * R.CQE_SIZE;
        if (dv.getUint32(e + R.CQE_STATUS, true) !== R.WcStatus.SUCCESS) { this.broken[p] = true; continue; }
        if (dv.getUint32(e + R.CQE_OPCODE, true) !== R.WcOp.RECV) continue;
        const j = Number(dv.getBigUint64(e + R.CQE_WRID, true));
        const blen = dv.getUint32(e + R.CQE_BYTE_LEN, true);
        if (blen !== S.CQE_SIZE) throw new Finding("invariant", `queue ${p}: a response capsule of ${blen} bytes (NVMe-oF §2.2: 16)`);
        const b = card.guests[0]!.base + RESP_BASE + (p * RECVS + j) * RESP_SLOT;
        const cid = dv.getUint16(b + S.CQE_DW3, true);
        this.statuses.add((p << 15) | ((dv.getUint32(b + S.CQE_DW3, true) >>> S.CQE_STATUS_SHIFT) & 0x7fff));
        const m = this.resp[p]!;
        m.set(cid, (m.get(cid) ?? 0) + 1);
        this.respN[p]!++;
        if ((m.get(cid) ?? 0) > (this.sent[p]!.get(cid) ?? 0)) throw new Finding("invariant", `queue ${p}: response ${m.get(cid)} for CID ${cid}, which ${this.sent[p]!.get(cid) ?? 0} capsule(s) carried`);
      }
      dv.setUint32(c + R.RCC_CQ_CONS, cons, true);
    });
    return n;
  }

  /** Rounds until idle (1 µs each), then virtual time in larger steps so timers expire. */
  private settle(max: number): void {
    let idle = 0;
    for (let i = 0; i < max && idle < 2; i++) {
      this.now += 1000;
      idle = this.round() === 0 ? idle + 1 : 0;
    }
  }

  // ---- running ----
  reset(): void {
    for (const c of this.ctrls) this.fc.hostWrote(c.stageBase, c.stage.highWater); // the last input's controllers
    this.rx.restore();
    this.now = 0;
    this.fc.card.fw.rdmaPoll(0, 0);
  }

  run(input: Uint8Array): void {
    const fc = this.fc, card = fc.card, fw = card.fw;
    this.reset();
    const p = this.codec.decode(input);
    const hdr = p.header[0]!;
    const protection = (hdr & 2) !== 0;
    fw.nicSetFlags((hdr & 4 ? 0 : N.NGF_TAIL_FAST_PATH) | (hdr & 8 ? 0 : N.NGF_DIF_CHECK));
    // the namespaces start empty: two arrays zeroed per input, not allocated (64 KiB buffers per input kept the GC busy)
    for (const b of this.nsBytes) b.fill(0);
    const sub = new Subsystem([new MemoryBackend(this.nsBytes[0]!, 512), new MemoryBackend(this.nsBytes[1]!, 4096)], { protection });
    this.ctrls = [0, 1].map((k) => new StorageController(k, card, sub, { difCheck: (hdr & 8) === 0 }));
    PAIRS.forEach(([, t], k) => this.ctrls[k]!.bindQp(t, MTU));
    this.caps = 0;
    this.statuses.clear();
    for (let q = 0; q < 2; q++) { this.sent[q]!.clear(); this.resp[q]!.clear(); this.sentN[q] = 0; this.respN[q] = 0; this.broken[q] = false; }
    this.rx.begin();
    for (const c of NIC_DROPS) this.before[c] = fc.counter(c);
    if (hdr & 1) {
      // the host's bring-up: Connect (admin), CC.EN = 1, Connect (I/O), each answered before the next
      const pre = [[0, K.CONNECT_ADMIN, 0, 0xfff0, 0, 0, 0, G.INCAPSULE, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, K.PROP_SET, NVME_REG_CC, 0xfff1, 0, 0, 0, G.NULL, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, K.CONNECT_IO, 0, 0xfff2, 0, 0, 0, G.KEYED, 0, 0, 0, 0, 0, 0, 0, 0]];
      for (const v of pre) { this.send(v); this.settle(64); }
    }
    for (const op of p.ops) {
      const v = op.vals;
      switch (OPS[op.code]!.name) {
        case "capsule": this.send(v); break;
        case "rounds": for (let i = 0; i <= v[0]! % 64; i++) { this.now += 1000; this.round(); } break;
        case "time": this.now += (v[0]! + 1) * 1000; this.round(); break;
      }
    }
    this.settle(400);
    // timers: retransmissions, RNR waits, retries exhausted (a broken queue ends in ERR, its work flushed)
    for (let i = 0; i < 64 && (this.pendingWork() || fw.rdmaRcNextDeadline() !== Infinity); i++) {
      this.now = Math.max(this.now + 1000, Math.min(fw.rdmaRcNextDeadline(), this.now + 1e6));
      this.settle(50);
    }
    this.check();
    fc.auditCanaries();
  }

  private pendingWork(): boolean { return this.ctrls.some((c) => c.inFlight() > 0) || this.rx.pending() > 0; }

  private check(): void {
    const fc = this.fc, fw = fc.card.fw, dv = fc.card.dv;
    this.rx.check();
    let drops = 0;
    for (const c of NIC_DROPS) drops += fc.counter(c) - this.before[c]!;
    const errs = (c: StorageController) => { const e = c.stats().errors; return (e.too_many_commands ?? 0) + (e.bad_command_entry ?? 0); };
    const ctrlDrops = this.ctrls.reduce((n, c) => n + errs(c), 0);
    for (let p = 0; p < 2; p++) {
      const [hq, tq] = PAIRS[p]!;
      const live = !this.broken[p] && fw.rdmaQpState(hq) === 3 && fw.rdmaQpState(tq) === 3;
      if (live && this.sentN[p]! !== this.respN[p]! && drops + ctrlDrops === 0) {
        throw new Finding("invariant", `queue ${p}: ${this.sentN[p]} capsules sent, ${this.respN[p]} responses, no drop counted (QPs in RTS)`);
      }
    }
    const total = this.sentN[0]! + this.sentN[1]!, answered = this.respN[0]! + this.respN[1]!;
    if (!this.broken[0] && !this.broken[1] && PAIRS.flat().every((q) => fw.rdmaQpState(q) === 3) && answered + drops + ctrlDrops !== total) {
      throw new Finding("invariant", `${total} capsules sent, ${answered} answered + ${drops} NIC drops + ${ctrlDrops} controller drops`);
    }
    for (const c of this.ctrls) {
      const s = c.stats();
      if (s.inFlight !== 0 || s.stageInUse !== 0 || s.waiting !== 0) {
        throw new Finding("invariant", `controller ${c.k} after the run settled: ${s.inFlight} commands in flight, ${s.waiting} waiting, ${s.stageInUse} staging bytes held`);
      }
      const cb = M.NIC_CTRLS + c.k * M.NIC_CTRL_SIZE, w = (f: number) => dv.getUint32(cb + f, true);
      if (w(N.CB_CMD_PROD) !== w(N.CB_CMD_CONS) || w(N.CB_CMD_CONS) !== w(N.CB_CMD_DONE)) {
        throw new Finding("invariant", `controller ${c.k}: command ring produced ${w(N.CB_CMD_PROD)}, consumed ${w(N.CB_CMD_CONS)}, buffers returned ${w(N.CB_CMD_DONE)}`);
      }
      if (w(N.CB_SQ_HEAD) !== w(N.CB_SQ_TAIL)) throw new Finding("invariant", `controller ${c.k}: send queue head ${w(N.CB_SQ_HEAD)} ≠ tail ${w(N.CB_SQ_TAIL)} after the run settled`);
    }
  }

  /** Controller commands and errors by name, response statuses by queue, as feedback slots above the edge map. */
  collectFeatures(seen: Uint8Array): number {
    let fresh = 0;
    const mark = (key: string) => {
      let id = this.featureIds.get(key);
      if (id === undefined) {
        let h = 2166136261;
        for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
        id = M.FUZZ_COV_SIZE + ((h >>> 0) % FEATURES);
        this.featureIds.set(key, id);
      }
      if (seen[id] === 0) { seen[id] = 1; fresh++; }
    };
    for (const c of this.ctrls) {
      const s = c.stats();
      for (const k of Object.keys(s.commands)) mark(`c${c.k}:${k}`);
      for (const k of Object.keys(s.errors)) mark(`e${c.k}:${k}`);
    }
    for (const st of this.statuses) mark(`s:${st}`);
    return fresh;
  }

  explain(input: Uint8Array): string[] { return this.codec.explain(input); }
  collect(seen: Uint8Array): number { return this.fc.collect(seen); }
  byFile(seen: Uint8Array, perFunction?: boolean): Record<string, [number, number]> { return this.fc.byFile(seen, perFunction); }
  fullAudit(): void { this.fc.auditFull(); }
  restoreAll(): void { this.fc.restoreAll(); this.rx.slotBytes.fill(0); }
}

export const nvmfCapsuleTarget: Target = {
  name: "nvmf-capsule",
  about: "NVMe-oF command capsules (Connect, Property, admin, I/O; SGLs, in-capsule data) as RC SENDs into the storage NIC and controllers; one response per capsule",
  create: (opts) => NvmfCapsuleHarness.create(opts?.module),
};
