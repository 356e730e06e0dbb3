// dpu-rx: frames from the storage network into the DPU's receive path while its NVMe-oF fabric
// queues are LIVE and guest requests are in flight (nvmeof/host.ts: response capsules, slots,
// requests; rdma/: the receive path, responder and completer of the fabric queues' RC QPs).
// The baseline is a real bring-up: the DPU card (a VM with a virtio-blk device on a remote disk)
// and the storage NIC card with its controllers on a fabric, RDMA-CM connect, Fabrics Connect,
// CC.EN, Identify (host/remote.ts); then the guest submits seven requests (reads of one block
// and of eight, a write small enough to go in the capsule, an eight-block write by keyed SGL,
// flush, discard, write zeroes), the DPU sends their capsules, and the wire stops there: the
// storage side is the fuzzer from now on. Only the DPU card is reset between inputs.
//
// An input is a program of frames to the admin or I/O queue's QP built from the wire format
// (roce-rx's frame builder, its damage kinds included): response capsules to the real CIDs of
// the requests in flight or to stale / made-up ones, with any status, SQID, SQHD and length;
// RDMA WRITEs into a read request's buffer at good and bad offsets, lengths and keys, in one
// packet or several; RDMA READ requests of a write request's buffer; ACKs and NAKs of the
// DPU's capsule SENDs; any opcode; raw bytes; polls and virtual time. PSNs are relative to
// what the QP expects, so frames reach the sequence checks; duplicates come from negative
// offsets.
//
// Oracles: no trap; the memory audit (every byte of the DPU card outside the guest window it
// registered and the DPU's own RDMA / NVMe-oF / front-end state equals the baseline); every
// frame accounted for once (roce-rx's RxRing: result log, counters); no request completes
// twice, and only the requests in flight complete (virtio used ring, status byte written iff
// completed); a request that completed with status OK had, for each of its CIDs, an accepted
// 16-byte SEND ONLY response on its queue with that CID, its queue's SQID and a success
// status; after the input the queues are torn down and then every request has completed
// exactly once.
import * as M from "../../../assembly/memmap.js";
import * as W from "../../../assembly/rdma/wire.js";
import * as S from "../../../assembly/nvme/spec.js";
import * as F from "../../../assembly/nvmeof/defs.js";
import * as V from "../../../assembly/virtio/layout.js";
import { Card } from "../../card.js";
import { MemoryBackend } from "../../backends/memory.js";
import { RemoteStorage } from "../../remote.js";
import { VirtioBlkPci } from "../../pcie/virtio-pci.js";
import { VirtioBlkDriver } from "../../guest/virtio-blk.js";
import { BlkOp } from "../../guest/driver.js";
import { FuzzCard, Finding, range, tracked, loadFuzzFirmware, type Range } from "../card.js";
import { ProgramCodec, type Op, type OpSpec } from "../program.js";
import type { Rng } from "../rng.js";
import type { Harness, Target } from "../target.js";
import { buildFrame, built, rawFrame, RxRing, OPCODES, CRC_LANE_TMP, IPO, BTHO } from "./roce-rx.js";

const RAM = 0x40000, DISK = 0x40000, BS = 512, QSIZE = 32, MTU = 1024;
const QP_RQ_EPSN = 16, QP_SQ_PSN = 36, QP_SQ_UNA = 40; // rdma/qp.ts entry fields (AssemblyScript; tsc cannot read it)
const R_ID = 12; // blk/req.ts: the front end's id (virtio head)
const SLOT_STATUS = 32; // host/guest/virtio-blk.ts: status byte in the request's slot
const UNDONE = 0xee; // status byte before completion
const META = F.SLOT_META, META_BYTES = 32;

/** One guest request in flight at the baseline. */
interface Req { id: number; op: BlkOp; q: number; cids: number[]; keyed?: { va: number; len: number; key: number }; status: number }

const RESP_FIELDS = [
  { name: "queue", width: 1, interesting: [0, 1] },
  { name: "req", width: 1, interesting: [0, 1, 2, 3, 4, 5, 6, 7, 0xff] }, // a request in flight (≥ 7: the raw CID)
  { name: "cid", width: 2, interesting: [0, 1, 0x40, 0xffff, 0x3f] }, // XORed into the request's CID (or the CID)
  { name: "status", width: 2, interesting: [0, 0, 0, 1, 2, 0x4000, 0x80, 0x2000, 0x7fff, 0x282] }, // status field [31:17] >> 17
  { name: "sqid", width: 1, interesting: [0, 0, 1, 2, 0xff] }, // XORed into the queue's QID
  { name: "plen", width: 1, interesting: [16, 16, 0, 15, 17, 32, 64, 65, 255] },
  { name: "psn", width: 2, interesting: [0, 0, 0xffff, 1, 2, 0x8000] },
  { name: "sqhd", width: 2, interesting: [0, 1, 0xffff] },
  { name: "dmg", width: 1, interesting: [0, 0, 0, 1, 14, 15, 18] },
  { name: "dv", width: 4, interesting: [0, 1, 0xffff, 0xffffffff] },
] as const;

const XFER_FIELDS = [
  { name: "req", width: 1, interesting: [0, 1, 2, 3, 0xff] },
  { name: "off", width: 4, interesting: [0, 1, 512, 4095, 4096, 0xffffffff, 0x80000000] }, // from the request's buffer
  { name: "len", width: 2, interesting: [0, 1, 512, 1024, 1025, 4096, 4097, 0xffff] }, // 0: the buffer's length
  { name: "key", width: 4, interesting: [0, 0, 1, 0xffffffff, 0x100] }, // 0: the request's key
  { name: "pkts", width: 1, interesting: [0, 1, 2, 4, 5] }, // WRITE: 0 = cut at the MTU
  { name: "psn", width: 2, interesting: [0, 0, 0xffff, 1] },
  { name: "dmg", width: 1, interesting: [0, 0, 0, 1, 14, 15] },
  { name: "dv", width: 4, interesting: [0, 1, 0xffff] },
  { name: "hi", width: 4, interesting: [0, 0, 1, 0xffffffff] }, // VA high 32 bits
] as const;

const OPS: OpSpec[] = [
  { name: "resp", fields: RESP_FIELDS },
  { name: "write", fields: XFER_FIELDS },
  { name: "read", fields: XFER_FIELDS },
  { name: "ack", fields: [
    { name: "queue", width: 1, interesting: [0, 1] },
    { name: "aeth", width: 1, interesting: [0x1f, 0x00, 0x20, 0x60, 0x61, 0x62, 0x63, 0x64, 0xff] }, // syndrome
    { name: "psn", width: 2, interesting: [0, 0xffff, 1, 0x8000, 0xfffe] }, // from the last PSN sent
    { name: "msn", width: 2, interesting: [0, 1, 7, 0xffff] },
    { name: "op", width: 1, interesting: [W.Op.RC_ACK, W.Op.RC_ACK, W.Op.RC_READ_RESPONSE_ONLY, W.Op.RC_ATOMIC_ACK] },
  ] },
  { name: "frame", fields: [
    { name: "opcode", width: 1, interesting: OPCODES },
    { name: "queue", width: 1, interesting: [0, 1, 2, 0xff] }, // ≥ 2: the QP number itself
    { name: "psn", width: 2, interesting: [0, 1, 0xffff] },
    { name: "flags", width: 1, interesting: [0, 0x80, 0x40, 1] },
    { name: "plen", width: 2, interesting: [0, 16, 1024, 1025, 0xffff] },
    { name: "dmg", width: 1, interesting: [0, 0, 1, 14] },
    { name: "dv", width: 4, interesting: [0, 1, 0xffff] },
    { name: "va", width: 4, interesting: [0, 1, 0xffffffff] },
    { name: "key", width: 4, interesting: [0, 1, 0xffffffff] },
    { name: "dlen", width: 4, interesting: [0, 1, 4096, 0xffffffff] },
  ] },
  { name: "raw", fields: [{ name: "fixIcrc", width: 1 }], blob: true },
  { name: "poll", fields: [{ name: "budget", width: 1, interesting: [0, 1, 255] }] },
  { name: "time", fields: [{ name: "us", width: 2, interesting: [1, 100, 1000, 0xffff] }] },
];

class DpuRxHarness implements Harness {
  readonly codec = new ProgramCodec(OPS, 1);
  readonly unit = "edges";
  private rx!: RxRing;
  private reqs: Req[] = [];
  /** Per fabric queue (0 admin, 1 I/O): QPN and QID. */
  private queues: { q: number; qpn: number; qid: number }[] = [];
  private used = 0; // guest address of the used ring
  private usedBase = 0;
  private now = 0;
  private t0 = 0;
  /** Card offsets of the driver's own structures in the VM's window (setup buffers, rings, request slots), and the VM's key. */
  private prot = { lo: 0, hi: 0, key: 0 };
  private readonly pay = new Uint8Array(4096);
  private readonly payDv = new DataView(this.pay.buffer);
  private readonly fill = new Uint8Array(8192);
  private readonly seen = new Uint8Array(QSIZE);
  /** Frames of this input shaped as a good success response: [frame index, "qpn:cid"]. */
  private shaped: [number, string][] = [];

  private constructor(readonly fc: FuzzCard, readonly drv: VirtioBlkDriver) {
    let x = 0x2468;
    for (let i = 0; i < this.fill.length; i++) { x = (x * 1103515245 + 12345) >>> 0; this.fill[i] = x >>> 24; }
  }

  get total(): number { return this.fc.edgesTotal; }
  get mapSize(): number { return M.FUZZ_COV_SIZE; }

  static async create(module?: WebAssembly.Module): Promise<DpuRxHarness> {
    const mod = module ?? await loadFuzzFirmware();
    const card = await Card.create({ guests: [{ ramBytes: RAM }], disks: [{ kind: "nvmeof", blockSize: BS, blocks: DISK / BS }] }, mod);
    const remote = await RemoteStorage.create(card, [{ disk: 0, guest: 0, backend: new MemoryBackend(new Uint8Array(DISK), BS) }], {
      fabric: { gbps: 100, latency: 1000, loss: 0, reorder: 0, duplicate: 0, mtu: MTU }, target: { controllers: 1, fast_path: true, protection: false, mode: "connectors", heartbeat: 100_000 }, seed: 1, module: mod,
    });
    const dev = new VirtioBlkPci(card, { guest: 0, disk: 0, queues: 1, queueSize: QSIZE });
    const g = card.guests[0]!;
    const drv = new VirtioBlkDriver(dev, g, { queues: 1, queueSize: QSIZE, indirect: false });
    const settle = () => { for (let i = 0; i < 200; i++) { card.now += 1000; card.poll(); remote.step(card.now); } };
    settle();
    // the requests in flight: submitted, kicked, their capsules sent; the storage side answers no more
    const buf = g.alloc(0x8000, 4096);
    const subs: [BlkOp, number, number, number][] = [
      [BlkOp.READ, 0, 1, buf], [BlkOp.READ, 8, 8, buf + 0x1000], [BlkOp.WRITE, 16, 1, buf + 0x2000], [BlkOp.WRITE, 24, 8, buf + 0x3000],
      [BlkOp.FLUSH, 0, 0, 0], [BlkOp.DISCARD, 40, 2, 0], [BlkOp.WRITE_ZEROES, 48, 4, 0],
    ];
    subs.forEach(([op, lba, n, b], tag) => { if (!drv.submit(op, lba, n, b, tag)) throw new Error("dpu-rx baseline: submit"); });
    const vq = drv.queues[0]!;
    drv.kick();
    const ids = vq.tags.map((t, id) => (t >= 0 ? id : -1)).filter((id) => id >= 0);
    for (const id of ids) g.u8[vq.slot(id) + SLOT_STATUS] = UNDONE;
    card.now += 1000;
    card.poll();
    const dv = card.dv;
    dv.setUint32(M.NET_TX_CTRL + 4, dv.getUint32(M.NET_TX_CTRL, true), true); // the wire took them
    const c = remote.controllers[0]!;
    const h = new DpuRxHarness(await FuzzCard.wrap(card), drv);
    h.queues = [c.adminQueue, c.ioQueues[0]!].map((q) => {
      const qa = M.NVMF_BASE + q * M.NVMF_QUEUE_ENTRY_SIZE;
      return { q, qpn: dv.getUint32(qa + F.NQ_QPN, true), qid: dv.getUint32(qa + F.NQ_QID, true) };
    });
    // what the DPU has in flight, from its capsule slots
    const byId = new Map<number, Req>();
    h.queues.forEach(({ q }, qi) => {
      for (let i = 0; i < M.NVMF_DEPTH; i++) {
        const cap = M.NVMF_CAPSULES + (q * M.NVMF_DEPTH + i) * M.NVMF_CAPSULE_SLOT, m = cap + META;
        if (dv.getUint32(m + F.SM_STATE, true) === F.SlotState.FREE) continue;
        const r = dv.getUint32(m + F.SM_REQ, true);
        if (r === F.SM_RAW) continue;
        const id = dv.getUint32(M.REQ_BASE + r * M.REQ_SIZE + R_ID, true);
        const tag = vq.tags[id]!;
        let e = byId.get(id);
        if (!e) { e = { id, op: subs[tag]![0], q: qi, cids: [], status: vq.slot(id) + SLOT_STATUS }; byId.set(id, e); }
        e.cids.push(dv.getUint32(m + F.SM_CID, true));
        const sgl = cap + F.SQE_SGL1;
        if (card.u8[sgl + F.SGL_ID] === F.SGL_ID_KEYED && e.op !== BlkOp.FLUSH && e.op !== BlkOp.WRITE_ZEROES) {
          e.keyed = { va: Number(dv.getBigUint64(sgl + F.SGL_ADDR, true)), len: dv.getUint32(sgl + F.SGL_KEYED_LEN, true) & 0xffffff, key: dv.getUint32(sgl + F.SGL_KEYED_KEY, true) };
        }
      }
    });
    h.reqs = [...byId.values()].sort((a, b) => a.id - b.id);
    if (h.reqs.length !== subs.length) throw new Error(`dpu-rx baseline: ${h.reqs.length} requests in flight, want ${subs.length}`);
    h.used = vq.ring.device;
    h.usedBase = g.dv.getUint16(h.used + V.USED_IDX, true);
    h.t0 = card.now;
    h.prot = { lo: g.base, hi: g.base + buf, key: h.reqs.find((x) => x.keyed)!.keyed!.key };
    const f = dev.func;
    const qent = M.QUEUE_TABLE_BASE + f * M.MAX_QUEUES * M.QUEUE_ENTRY_SIZE;
    const lazy = (r: Range): Range => ({ ...r, lazy: true });
    // only the firmware writes these; the guest driver (TypeScript) writes the VM's RAM, its BAR and doorbells (copied whole)
    const writable: Range[] = [
      tracked(M.COUNTERS_BASE, M.QUEUE_TABLE_BASE - M.COUNTERS_BASE, "counters, globals, tables"),
      tracked(qent, M.MAX_QUEUES * M.QUEUE_ENTRY_SIZE, "the virtio function's queue state"),
      range(M.DOORBELL_BASE, M.IRQ_STATE_BASE - M.DOORBELL_BASE, "doorbells, polling, irq out"),
      range(M.IRQ_STATE_BASE + f * M.MAX_VECTORS * M.IRQ_ENTRY_SIZE, M.MAX_VECTORS * M.IRQ_ENTRY_SIZE, "the function's irq state"),
      range(M.BAR_BASE + f * M.BAR_SIZE, M.BAR_SIZE, "the function's BAR"),
      tracked(M.SHADOW_BASE + f * M.MAX_QUEUES * M.SHADOW_QUEUE_SIZE, M.SHADOW_QUEUE_SIZE, "the function's shadow ring"),
      tracked(M.SCRATCH_BASE + f * M.SCRATCH_FUNC_SIZE, M.SCRATCH_FUNC_SIZE, "the function's scratch"),
      tracked(M.NET_TX_CTRL, 64, "TX ring control"), lazy(range(M.NET_TX_SLOTS, M.NET_RING_ENTRIES * M.NET_SLOT_SIZE, "TX ring slots")),
      range(M.NET_RX_CTRL, 64, "RX ring control"), lazy(range(M.NET_RX_SLOTS, M.NET_RING_ENTRIES * M.NET_SLOT_SIZE, "RX ring slots")),
      lazy(range(CRC_LANE_TMP, M.RDMA_CTRL - CRC_LANE_TMP, "CRC kernel's lane spill")),
      tracked(M.RDMA_CTRL, M.RXLOG_BASE - M.RDMA_CTRL, "RDMA control and scratch"),
      lazy(range(M.RXLOG_BASE, M.RXLOG_ENTRIES * M.RXLOG_ENTRY_SIZE, "receive result log")),
      tracked(M.QP_TABLE_BASE, M.RCQ_BASE - M.QP_TABLE_BASE, "QP table, CM, MR table"),
      ...h.queues.map(({ qpn }) => tracked(card.fw.rdmaRcBlock(qpn), M.RCQ_SIZE, `RC queues of QP ${qpn}`)),
      tracked(M.NVMF_BASE, M.NVMF_MAX_QUEUES * M.NVMF_QUEUE_ENTRY_SIZE, "fabric queue entries"),
      // capsule slots: the SQEs are written before they are sent; their state (META) is restored by run()
      ...h.queues.map(({ q }) => lazy(range(M.NVMF_CAPSULES + q * M.NVMF_DEPTH * M.NVMF_CAPSULE_SLOT, M.NVMF_DEPTH * M.NVMF_CAPSULE_SLOT, `capsule slots of fabric queue ${q}`))),
      ...h.queues.map(({ q }) => tracked(M.NVMF_RESPONSES + q * M.NVMF_DEPTH * M.NVMF_RESP_SLOT, M.NVMF_DEPTH * M.NVMF_RESP_SLOT, `response buffers of fabric queue ${q}`)),
      range(g.base, g.size, "the VM's RAM (registered whole for the fabric: keyed SGLs name it)"),
    ];
    h.fc.freeze(writable, [range(0, 4096, "firmware static data")]);
    h.rx = new RxRing(h.fc);
    return h;
  }

  // ---- generation ----
  generate(rng: Rng): Uint8Array {
    const ops: Op[] = [];
    const n = 2 + rng.small(24);
    for (let i = 0; i < n; i++) ops.push(...this.event(rng));
    return this.codec.encode({ header: Uint8Array.of(0), ops });
  }

  /** What the storage side might send next: mostly the right thing, sometimes not. */
  private event(rng: Rng): Op[] {
    const c = this.codec, n = this.reqs.length, ops: Op[] = [];
    const dmg = () => (rng.chance(0.8) ? 0 : rng.below(20));
    const psn = () => (rng.chance(0.85) ? 0 : rng.pick([0xffff, 1, rng.below(0x10000)]));
    const r = rng.below(n), req = this.reqs[r]!;
    switch (rng.below(8)) {
      case 0: case 1: case 2:
        ops.push(c.op("resp", req.q, rng.chance(0.9) ? r : 0xff, rng.chance(0.85) ? 0 : rng.next() & 0xffff, rng.chance(0.7) ? 0 : rng.pick([1, 2, 0x4000, 0x282, rng.below(0x8000)]),
          rng.chance(0.9) ? 0 : rng.below(256), rng.chance(0.9) ? 16 : rng.below(256), psn(), rng.below(64), dmg(), rng.next()));
        break;
      case 3: case 4: {
        const rd = this.reqs.filter((x) => x.op === BlkOp.READ);
        const t = rd.length ? this.reqs.indexOf(rng.pick(rd)) : r;
        ops.push(c.op("write", t, rng.chance(0.8) ? 0 : rng.pick([512, 4096, rng.next()]), rng.chance(0.8) ? 0 : rng.small(5000), rng.chance(0.9) ? 0 : rng.next(), rng.chance(0.8) ? 0 : rng.small(5), psn(), dmg(), rng.next(), 0));
        break;
      }
      case 5: {
        const wr = this.reqs.filter((x) => x.op === BlkOp.WRITE && x.keyed);
        const t = wr.length ? this.reqs.indexOf(rng.pick(wr)) : r;
        ops.push(c.op("read", t, rng.chance(0.8) ? 0 : rng.next(), rng.chance(0.8) ? 0 : rng.small(5000), rng.chance(0.9) ? 0 : rng.next(), 0, psn(), dmg(), rng.next(), 0));
        break;
      }
      case 6: ops.push(c.op("ack", req.q, rng.chance(0.7) ? 0x1f : rng.below(256), rng.chance(0.7) ? 0 : rng.pick([0xffff, 0xfffe, rng.below(0x10000)]), rng.below(16), W.Op.RC_ACK)); break;
      default:
        ops.push(c.op("frame", rng.pick(OPCODES), rng.below(2), rng.pick([0, 1, 0xffff]), rng.below(256), rng.small(1100), dmg(), rng.next(), rng.next(), rng.next(), rng.small(5000)));
    }
    if (rng.chance(0.3)) ops.push(c.op("poll", rng.below(256)));
    if (rng.chance(0.05)) ops.push(c.op("time", rng.small(2000)));
    return ops;
  }

  mutate(input: Uint8Array, rng: Rng, steps = 1): Uint8Array {
    let p = this.codec.decode(input);
    for (let k = 0; k < steps; k++) p = this.codec.mutate(p, rng, () => this.event(rng));
    return this.codec.encode(p);
  }

  // ---- running ----
  reset(): void {
    const u8 = this.fc.u8, base = (this.fc as unknown as { baseline: Uint8Array }).baseline;
    this.rx.restore();
    for (const { q } of this.queues) {
      for (let i = 0; i < M.NVMF_DEPTH; i++) {
        const m = M.NVMF_CAPSULES + (q * M.NVMF_DEPTH + i) * M.NVMF_CAPSULE_SLOT + META;
        u8.set(base.subarray(m, m + META_BYTES), m);
      }
    }
    this.now = this.t0;
  }

  run(input: Uint8Array): void {
    const fc = this.fc, card = fc.card, fw = card.fw, dv = card.dv;
    this.reset();
    const p = this.codec.decode(input);
    this.rx.begin();
    const next = new Map<number, number>();
    const expected = (qpn: number, resp: boolean) => {
      const k = resp ? qpn + 0x1000000 : qpn;
      let v = next.get(k);
      if (v === undefined) { v = dv.getUint32(fw.rdmaQpAddr(qpn) + (resp ? QP_SQ_UNA : QP_RQ_EPSN), true); next.set(k, v); }
      return v;
    };
    const psnOf = (qpn: number, resp: boolean, off: number) => {
      const e = expected(qpn, resp), o = (off << 16) >> 16;
      if (o === 0) next.set(resp ? qpn + 0x1000000 : qpn, (e + 1) & W.PSN_MASK);
      return (e + o) & W.PSN_MASK;
    };
    this.shaped.length = 0;
    const push = (build: (f: number) => number, wrote?: () => number) => {
      const k = this.rx.pushed, at = dv.getUint32(M.NET_RX_CTRL, true);
      this.rx.push(build, wrote);
      if (this.rx.pushed === k + 1) {
        const key = this.responseShape(M.NET_RX_SLOTS + (at % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE + M.NET_SLOT_HDR);
        if (key) this.shaped.push([k, key]);
      }
    };
    const frame = (opcode: number, qpn: number, psn: number, plen: number, fill: Uint8Array, o: { va?: number; vaHi?: number; key?: number; dlen?: number; dmg?: number; dv?: number; ackreq?: boolean }, extent = Math.max(plen, o.dlen ?? 0)) => {
      // The DPU registered the VM's whole window for keyed SGLs (nvmfSetGuestKey), so a target
      // may write anywhere in it, the driver's rings and status bytes too: the oracles read those,
      // so RDMA WRITEs with the VM's key are kept off them (moved to just after them).
      const pr = this.prot;
      if (o.key === pr.key && (o.vaHi ?? 0) === 0 && o.va !== undefined && o.va < pr.hi && o.va + extent > pr.lo) o = { ...o, va: pr.hi };
      push((f) => buildFrame(fc, f, {
        opcode, dqp: qpn, psn, ackreq: o.ackreq ?? true, seM: 0, plen: Math.min(plen, M.NET_FRAME_MAX), va: o.va ?? 0, vaHi: o.vaHi ?? 0,
        key: o.key ?? 0, dlen: o.dlen ?? plen, qkey: 0, srcQp: 0, dmg: o.dmg ?? 0, dv: o.dv ?? 0,
      }, fill), () => built.wrote);
    };
    const poll = (budget: number) => { card.now = this.now; fw.poll(budget, this.now); this.now += 1000; };
    for (const op of p.ops) {
      const v = op.vals;
      switch (OPS[op.code]!.name) {
        case "resp": {
          const qu = this.queues[v[0]! & 1]!, req = this.reqs[v[1]!];
          const cid = req ? (req.cids[0]! ^ v[2]!) & 0xffff : v[2]!;
          const pay = this.payDv;
          this.pay.fill(0, 0, 64);
          pay.setUint32(S.CQE_DW2, (v[7]! | ((qu.qid ^ v[4]!) << S.CQE_SQID_SHIFT)) >>> 0, true);
          pay.setUint32(S.CQE_DW3, (cid | ((v[3]! & 0x7fff) << S.CQE_STATUS_SHIFT)) >>> 0, true);
          frame(W.Op.RC_SEND_ONLY, qu.qpn, psnOf(qu.qpn, false, v[6]!), v[5]!, this.pay, { dmg: v[8]!, dv: v[9]! });
          break;
        }
        case "write": case "read": {
          const req = this.reqs[v[0]!] ?? this.reqs.find((x) => x.keyed)!;
          const k = req.keyed ?? this.reqs.find((x) => x.keyed)!.keyed!;
          const qpn = this.queues[1]!.qpn;
          const va = (k.va + v[1]!) % 2 ** 32, len = v[2]! || k.len, key = v[3]! || k.key;
          if (OPS[op.code]!.name === "read") {
            frame(W.Op.RC_READ_REQUEST, qpn, psnOf(qpn, false, v[5]!), 0, this.fill, { va, vaHi: v[8]!, key, dlen: len, dmg: v[6]!, dv: v[7]! });
            break;
          }
          const n = v[4]! ? Math.min(v[4]!, 8) : Math.max(1, Math.ceil(len / MTU));
          for (let i = 0; i < n; i++) {
            const pl = n === 1 ? len : i < n - 1 ? MTU : Math.max(0, len - (n - 1) * MTU);
            const opc = n === 1 ? W.Op.RC_WRITE_ONLY : i === 0 ? W.Op.RC_WRITE_FIRST : i === n - 1 ? W.Op.RC_WRITE_LAST : W.Op.RC_WRITE_MIDDLE;
            frame(opc, qpn, psnOf(qpn, false, i === 0 ? v[5]! : 0), pl, this.fill.subarray(i & 7), { va, vaHi: v[8]!, key, dlen: len, dmg: i === n - 1 ? v[6]! : 0, dv: v[7]!, ackreq: i === n - 1 }, Math.max(len, n * MTU));
          }
          break;
        }
        case "ack": {
          const qu = this.queues[v[0]! & 1]!;
          const last = (dv.getUint32(fw.rdmaQpAddr(qu.qpn) + QP_SQ_PSN, true) - 1 + ((v[2]! << 16) >> 16)) & W.PSN_MASK;
          const aeth = ((v[1]! << 24) | v[3]!) >>> 0;
          frame(v[4]! === W.Op.RC_ACK || v[4]! === W.Op.RC_ATOMIC_ACK ? v[4]! : W.Op.RC_ACK, qu.qpn, last, 0, this.fill, { va: aeth });
          break;
        }
        case "frame": {
          const qpn = v[1]! < 2 ? this.queues[v[1]!]!.qpn : v[1]!;
          const resp = v[0]! >= W.Op.RC_READ_RESPONSE_FIRST && v[0]! <= W.Op.RC_ATOMIC_ACK;
          frame(v[0]!, qpn, psnOf(qpn, resp, v[2]!), v[4]!, this.fill.subarray(v[7]! & 0xfff), { va: v[7]!, key: v[8]!, dlen: v[9]!, dmg: v[5]!, dv: v[6]!, ackreq: (v[3]! & 1) !== 0 });
          break;
        }
        case "raw": push((f) => rawFrame(fc, f, op.blob!, (v[0]! & 1) !== 0)); break;
        case "poll": poll(v[0]! + 1); break;
        case "time": this.now += (v[0]! + 1) * 1000; poll(256); break;
      }
    }
    for (let i = 0; i < 8 && this.rx.pending() !== 0; i++) poll(1024);
    this.rx.check();
    fc.auditCanaries();
    this.checkCompletions(false);
    // the end of the association: every request left must now fail, once
    for (const { q } of this.queues) fw.nvmfQueueTeardown(q);
    poll(256);
    this.checkCompletions(true);
  }

  /** Each request completes at most once (exactly once when `all`); status OK only after a good response to each of its CIDs. */
  private checkCompletions(all: boolean): void {
    const card = this.fc.card, g = card.guests[0]!, gdv = g.dv;
    const u1 = gdv.getUint16(this.used + V.USED_IDX, true);
    const n = (u1 - this.usedBase) & 0xffff;
    if (n > this.reqs.length) throw new Finding("invariant", `${n} used ring entries for ${this.reqs.length} requests in flight`);
    const seen = this.seen;
    seen.fill(0);
    for (let k = 0; k < n; k++) {
      const id = gdv.getUint32(this.used + V.USED_RING + ((this.usedBase + k) % QSIZE) * V.USED_ELEM_SIZE, true);
      const r = this.reqs.find((x) => x.id === id);
      if (!r) throw new Finding("invariant", `used ring entry ${k}: id ${id} was not in flight`);
      if (seen[id]!++) throw new Finding("invariant", `request ${id} (${BlkOp[r.op]}) completed twice`);
    }
    let good: Set<string> | undefined;
    for (const r of this.reqs) {
      const st = g.u8[r.status]!;
      if ((st !== UNDONE) !== (seen[r.id] !== 0)) throw new Finding("invariant", `request ${r.id} (${BlkOp[r.op]}): status byte ${st}, ${seen[r.id] ? "" : "not "}in the used ring`);
      if (all && !seen[r.id]) throw new Finding("invariant", `request ${r.id} (${BlkOp[r.op]}) never completed, even after its queue was torn down`);
      if (st !== V.BLK_S_OK) continue;
      good ??= this.goodResponses();
      for (const cid of r.cids) {
        if (!good.has(`${this.queues[r.q]!.qpn}:${cid}`)) throw new Finding("invariant", `request ${r.id} (${BlkOp[r.op]}) completed OK, but no well-formed success response to CID ${cid} was accepted`);
      }
    }
  }

  /** "qpn:cid" of every accepted frame shaped as a good success response. */
  private goodResponses(): Set<string> {
    const dv = this.fc.card.dv, b = this.rx.base, out = new Set<string>();
    for (const [k, key] of this.shaped) {
      const l = M.RXLOG_BASE + ((b.logProd + k) % M.RXLOG_ENTRIES) * M.RXLOG_ENTRY_SIZE;
      if (dv.getUint32(l + W.RXL_REASON, true) === 0) out.add(key);
    }
    return out;
  }

  /** "qpn:cid" when the frame at f is a whole 16-byte response capsule (SEND ONLY) with its queue's SQID and a success status. */
  private responseShape(f: number): string | null {
    const fc = this.fc, dv = fc.card.dv;
    const opc = fc.u8[f + BTHO]!;
    const ext = opc === W.Op.RC_SEND_ONLY ? 0 : opc === W.Op.RC_SEND_ONLY_IMM || opc === W.Op.RC_SEND_ONLY_INV ? 4 : -1;
    if (ext < 0) return null;
    const ipLen = dv.getUint16(f + IPO + W.IP_TOTLEN_OFF), pad = (fc.u8[f + BTHO + 1]! >> 4) & 3;
    if (ipLen - W.IP_HDR_LEN - W.UDP_HDR_LEN - W.BTH_LEN - ext - pad - W.ICRC_LEN !== S.CQE_SIZE) return null;
    const qpn = dv.getUint32(f + BTHO + W.BTH_DQP_OFF) & W.QPN_MASK;
    const qu = this.queues.find((x) => x.qpn === qpn);
    const c = f + BTHO + W.BTH_LEN + ext;
    if (!qu || (dv.getUint32(c + S.CQE_DW2, true) >>> S.CQE_SQID_SHIFT) !== qu.qid) return null;
    const dw3 = dv.getUint32(c + S.CQE_DW3, true);
    return ((dw3 >>> S.CQE_STATUS_SHIFT) & ~S.ST_DNR & 0x7fff) === 0 ? `${qpn}:${dw3 & 0xffff}` : null;
  }

  explain(input: Uint8Array): string[] { return this.codec.explain(input); }
  collect(seen: Uint8Array): number { return this.fc.collect(seen); }
  byFile(seen: Uint8Array, perFunction?: boolean): Record<string, [number, number]> { return this.fc.byFile(seen, perFunction); }
  fullAudit(): void { this.fc.auditFull(); }
  restoreAll(): void { this.fc.restoreAll(); this.rx.slotBytes.fill(0); }
}

export const dpuRxTarget: Target = {
  name: "dpu-rx",
  about: "frames into the DPU's receive path with fabric queues live and guest requests in flight; each request completes once, OK only after a good response",
  create: (opts) => DpuRxHarness.create(opts?.module),
};
