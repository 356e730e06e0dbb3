// The testbed API: firmware tests in a few lines of TypeScript inside the test runner.
//
//   const tb = await createTestbed("local");
//   const vm = tb.vm("vm1-nvme");
//   await vm.write(0, new Uint8Array(4096).fill(7));
//   expect((await vm.read(0, 1))[0]).toBe(7);
//   expect(tb.counter("nvme_io_commands")).toBe(2);
//
// It wraps the run loop of host/testbed.ts (one firmware poll per round, the virtual
// clock advanced by the cost model) with: handles per VM for IO with async/await, hooks
// on events, fault injection, a trace, counters by name and snapshot/restore.
// Everything runs on the virtual clock: `await vm.read()` runs the clock until that IO
// completes, so a test is deterministic and never waits on wall time.
import * as M from "../../assembly/memmap.js";
import { Counter } from "../../assembly/counters.js";
import { NVME_REG_CC } from "../../assembly/nvme/regs.js";
import type { PcapWriter } from "../fabric/pcap.js";
import { Testbed, type FileOpener, type RunResult, type Progress } from "../testbed.js";
import type { Card } from "../card.js";
import { loadScenario, parseScenario, BUILTIN_SCENARIOS, type Scenario, type VmSpec, type Overrides } from "../scenario.js";
import { BlkOp, type BlockDriver } from "../guest/driver.js";
import type { GuestRam } from "../guest/ram.js";
import { MemoryBackend } from "../backends/memory.js";
import type { BlockBackend } from "../backends/types.js";
import { parseDuration } from "../workload/units.js";
import { Tracer, matches, type TraceFilter, type TracerOptions } from "../trace/trace.js";
import { LIVE_EVENT_KINDS, RESERVED_EVENT_KINDS, WQE_STAGES, frameSummary, type EventKind, type EventOf, type TestbedEvent, type FrameDirection, type FrameSummary } from "../trace/events.js";
import type { FabricEvent } from "../fabric/fabric.js";
import type { Link } from "../fabric/link.js";
import type { RemoteStorage } from "../remote.js";
import type { StorageNic } from "../target/nic.js";
import type { StorageController, ControllerStats } from "../target/controller.js";
import { saveState, applyState, type WalkOptions } from "../snapshot/state.js";
import { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type Snapshot } from "../snapshot/snapshot.js";
import { captureImage, restoreImage } from "../snapshot/image.js";
import { DevState, CC_DEVICE_STATUS, BAR_COMMON } from "../pcie/virtio-pci.js";
import { CtrlState } from "../pcie/nvme-pci.js";
import type { NvmeDriver } from "../guest/nvme.js";
import type { VirtioBlkDriver } from "../guest/virtio-blk.js";

/** Misuse of the API (unknown VM, bad address, clock run backwards, …): the message names what was wrong. */
export class TestbedError extends Error {
  override name = "TestbedError";
}

/** An IO that completed with a non-zero status. */
export class IoError extends Error {
  override name = "IoError";
  constructor(readonly vm: string, readonly op: string, readonly lba: number, readonly status: number) {
    super(`${vm}: ${op} at LBA ${lba} failed with status ${status}`);
  }
}

/** Virtual time: ns as a number, or a duration string ("500us", "5ms", "2s"). */
export type Duration = number | string;

export interface CreateOptions extends Overrides {
  /** Run the scenario's fio-like jobs while the clock runs (default false: only the IO the test issues). */
  workload?: boolean;
  /**
   * Serve memory disks from the host (through the host-IO ring) instead of inline in the
   * firmware, so backend faults can be injected (default false).
   */
  hostBackends?: boolean;
  /** Record a trace from the start (true, or which kinds; default off — `tb.trace.start()`). */
  trace?: boolean | TracerOptions;
  /**
   * Every frame that crosses the fabric (remote disks), e.g. `createPcapFile("run.pcap")` in Node
   * or a `PcapWriter` over a `MemorySink` in a browser; close it when done. A testbed writing a
   * capture cannot be snapshotted.
   */
  pcap?: PcapWriter;
  /** A compiled firmware module (default: the one compiled once per process). */
  module?: WebAssembly.Module;
  /** Opens file disks (default: the Node file backend). */
  openFile?: FileOpener;
}

/** The result of an IO issued through a VmHandle. */
export interface IoResult {
  status: number;
  /** Read data (reads only). */
  data?: Uint8Array;
  /** Virtual submit and completion times (ns). */
  submitted: number;
  completed: number;
}

/** An IO in flight: `done` resolves when the clock has run far enough for it to complete. */
export interface IoHandle {
  readonly tag: number;
  readonly vm: string;
  readonly op: string;
  readonly lba: number;
  readonly blocks: number;
  /** Set when the IO has completed. */
  readonly result: IoResult | undefined;
  readonly done: Promise<IoResult>;
}

/** When a fault fires: at a virtual time, and/or on the first event matching `on`. Neither: now. */
export interface Trigger {
  at?: Duration;
  on?: EventKind | ((e: TestbedEvent) => boolean);
}

/**
 * Frames to act on: which way (default both), how many (default 1, counted over both ways) and
 * which ones (a test on the frame's decoded summary; default every frame).
 */
export interface FrameMatch {
  dir?: FrameDirection;
  count?: number;
  match?: (f: FrameSummary) => boolean;
}

/**
 * The faults. Frame, link and DIF faults need remote disks (a disk with "transport": "rdma",
 * e.g. the built-in scenario "rdma").
 */
export type Fault =
  /** Write or XOR bytes of a VM's RAM (guest memory corruption). */
  | { kind: "corrupt-guest-memory"; vm: string | number; gpa: number; bytes?: ArrayLike<number>; xor?: number; length?: number }
  /** Host backend IO fails (needs hostBackends or a file disk): matching IOs complete with an IO error. */
  | { kind: "backend-error"; vm: string | number; op?: "read" | "write" | "flush" | "discard" | "write-zeroes"; lba?: number; count?: number }
  /** Doorbells of a VM (optionally one queue) never reach the card. */
  | { kind: "drop-doorbell"; vm: string | number; queue?: number; count?: number }
  /** Doorbells reach the card `delay` later. */
  | { kind: "delay-doorbell"; vm: string | number; queue?: number; delay: Duration; count?: number }
  /** Reset the VM's device as its driver would (virtio: status 0; NVMe: CC.EN 1 → 0). */
  | { kind: "reset-device"; vm: string | number }
  /** Matching frames on the DPU ↔ NIC link never arrive (counted lost on the link); the RC transport must resend. */
  | ({ kind: "drop-frame" } & FrameMatch)
  /** One bit of each matching frame is flipped (`bit`, default drawn from the link's PRNG): the receiver's ICRC check drops it. */
  | ({ kind: "corrupt-frame"; bit?: number } & FrameMatch)
  /** Matching frames arrive `delay` later (default 10 µs), so later frames overtake them. */
  | ({ kind: "delay-frame"; delay?: Duration } & FrameMatch)
  /** Take the link down (frames sent or arriving meanwhile are dropped); with `for`, up again after that long. */
  | { kind: "link-down"; link?: string; for?: Duration }
  | { kind: "link-up"; link?: string }
  /** Flip a byte (`byte`, default 0) of block `lba` of a VM's remote disk on the target, leaving its protection information: the read fails the NIC's DIF check. Needs target.protection. */
  | { kind: "corrupt-dif"; vm: string | number; lba: number; byte?: number }
  /**
   * Storage controller `controller` ("A", "B", … or its index) crashes: it stops and loses its
   * state; with `for`, it restarts (empty) after that long. The NIC's shared connectors (or, with
   * target.mode "reconnect", the DPU's reconnect) take it from there.
   */
  | { kind: "crash-controller"; controller: string | number; for?: Duration };

export const RESERVED_FAULTS = [] as const;
const FRAME_FAULTS = ["drop-frame", "corrupt-frame", "delay-frame"] as const;
const FAULTS_TODAY = "corrupt-guest-memory, backend-error, drop-doorbell, delay-doorbell, reset-device, and with remote disks drop-frame, corrupt-frame, delay-frame, link-down, link-up, corrupt-dif, crash-controller";
/** What to do to get a fabric: named in every refusal of a fabric/NIC feature on a local testbed. */
const NEEDS_REMOTE = `this testbed has no remote disks, so no fabric, NIC or controllers (give a VM's disk "transport": "rdma" and the scenario a "target", or use the built-in scenario "rdma")`;

export interface FaultHandle {
  readonly kind: Fault["kind"];
  /** Times it fired (an armed fault counts each IO, doorbell or frame it really hit). */
  readonly fired: number;
  /** Disarm it. */
  cancel(): void;
}

const OP_NAMES: Record<number, string> = { [BlkOp.READ]: "read", [BlkOp.WRITE]: "write", [BlkOp.FLUSH]: "flush", [BlkOp.DISCARD]: "discard", [BlkOp.WRITE_ZEROES]: "write-zeroes" };
const API_TAG_BASE = 0x40000000; // tags of API IOs; job tags are slot numbers below iodepth
const ARENA_BYTES = 1 << 20; // guest RAM per VM for API IO buffers, taken on first use
const DEFAULT_TIMEOUT_NS = 1e8; // runUntil / await IO give up after 100 ms of virtual time
const HEX = (n: number) => (n < 0 ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`);

/** A firmware counter of a card by name; an unknown name throws naming near ones. */
function readCounter(card: Card, name: string, all: string): number {
  const c = (Counter as unknown as Record<string, number>)[name];
  if (typeof c !== "number" || name === "COUNT") {
    const near = Object.keys(card.counters()).filter((k) => k.includes(name) || name.includes(k)).slice(0, 5);
    throw new TestbedError(`unknown counter "${name}"${near.length ? ` (did you mean ${near.join(", ")}?)` : ` (tb.${all} lists them all)`}`);
  }
  return Number(card.dv.getBigUint64(M.COUNTERS_BASE + c * 8, true));
}

function duration(d: Duration, what: string, infinite = false): number {
  if (typeof d === "number") {
    if (Number.isNaN(d) || (!infinite && !Number.isFinite(d))) throw new TestbedError(`${what}: ${d} is not a finite number of ns`);
    return d;
  }
  try {
    return parseDuration(d);
  } catch (e) {
    throw new TestbedError(`${what}: ${(e as Error).message}`);
  }
}

interface ApiIo {
  tag: number; vm: VmHandle; op: BlkOp; lba: number; blocks: number; gpa: number; bytes: number;
  submitted: number; result?: IoResult; resolve?: (r: IoResult) => void; reject?: (e: Error) => void;
}

/** A host backend that fails IOs matching the armed backend-error faults. */
class FaultyBackend implements BlockBackend {
  readonly kind: string;
  readonly blockSize: number;
  readonly blocks: number;
  rules: { op?: string; lba?: number; left: number; handle: FaultState }[] = [];
  constructor(readonly inner: BlockBackend, private readonly onFire: (op: string, lba: number, f: FaultState) => void) {
    this.kind = inner.kind;
    this.blockSize = inner.blockSize;
    this.blocks = inner.blocks;
  }
  private check(op: string, lba: number, n: number): void {
    for (const r of this.rules) {
      if (r.left <= 0 || r.handle.cancelled) continue;
      if (r.op !== undefined && r.op !== op) continue;
      if (r.lba !== undefined && (r.lba < lba || r.lba >= lba + Math.max(n, 1))) continue;
      r.left--;
      r.handle.fired++;
      this.onFire(op, lba, r.handle);
      throw new Error(`injected backend error (${op} at LBA ${lba})`);
    }
  }
  read(lba: number, dst: Uint8Array): void { this.check("read", lba, dst.length / this.blockSize); this.inner.read(lba, dst); }
  write(lba: number, src: Uint8Array): void { this.check("write", lba, src.length / this.blockSize); this.inner.write(lba, src); }
  flush(): void { this.check("flush", 0, this.blocks); this.inner.flush(); }
  discard(lba: number, n: number): void { this.check("discard", lba, n); this.inner.discard(lba, n); }
  writeZeroes(lba: number, n: number): void { this.check("write-zeroes", lba, n); this.inner.writeZeroes(lba, n); }
  close(): void { this.inner.close(); }
  get created(): boolean { return !("created" in this.inner) || (this.inner as { created?: boolean }).created === true; }
}

interface FaultState { kind: Fault["kind"]; fired: number; cancelled: boolean }
/** An armed frame fault: done once it hit `count` frames or was cancelled, then disarmed after the round. */
interface FrameRule { state: FaultState; count: number; disarm: () => void }

interface DoorbellRule { vm: number; queue?: number; left: number; delay?: number; state: FaultState }
interface Scheduled { at: number; seq: number; run: () => void }
interface Watch { on: EventKind | ((e: TestbedEvent) => boolean); run: () => void; state: FaultState }

/** One VM of the testbed: its IO, its RAM, its driver and device. */
export class VmHandle {
  /** API IO buffers: [arena, arena + ARENA_BYTES) of guest RAM, bump-allocated, reset when idle. */
  private arena = -1;
  private arenaNext = 0;
  /** API IOs of this VM in flight. */
  inflight = 0;

  /** @internal */
  constructor(private readonly tb: DpuTestbed, readonly index: number, readonly spec: VmSpec, readonly driver: BlockDriver) {}

  get name(): string { return this.spec.name; }
  get device(): VmSpec["device"] { return this.spec.device; }
  /** The PCIe function of this VM's device on the card (VM i is function i). */
  get func(): number { return this.index; }
  get ram(): GuestRam { return this.tb.card.guests[this.index]!; }
  get blockSize(): number { return this.driver.blockSize; }
  get capacityBlocks(): number { return this.driver.capacityBlocks; }
  /** The NVMe guest driver (queue pairs, raw SQEs) for driver-level tests; throws for a virtio-blk VM. */
  get nvme(): NvmeDriver {
    if (this.device !== "nvme") throw new TestbedError(`VM ${this.name} is a ${this.device} device, not NVMe`);
    return this.driver as unknown as NvmeDriver;
  }
  /** The virtio-blk guest driver (rings, raw chains) for driver-level tests; throws for an NVMe VM. */
  get virtio(): VirtioBlkDriver {
    if (this.device !== "virtio-blk") throw new TestbedError(`VM ${this.name} is an ${this.device} device, not virtio-blk`);
    return this.driver as unknown as VirtioBlkDriver;
  }
  /** The device model on the card side (VirtioBlkPci or NvmePci). */
  get model(): unknown {
    const d = this.driver as unknown as { bus?: unknown; dev?: unknown };
    return d.bus ?? d.dev;
  }

  /** Bytes of guest RAM at guest physical address gpa. */
  peek(gpa: number, len: number): Uint8Array {
    this.checkRange(gpa, len, "peek");
    return this.ram.u8.slice(gpa, gpa + len);
  }

  /** Write bytes into guest RAM (as the guest's CPU would). */
  poke(gpa: number, bytes: ArrayLike<number>): void {
    this.checkRange(gpa, bytes.length, "poke");
    this.ram.u8.set(bytes, gpa);
  }

  /** Allocate guest RAM for a test's own rings or buffers; returns the guest physical address. */
  alloc(bytes: number, align = 4096): number {
    try {
      return this.ram.alloc(bytes, align);
    } catch (e) {
      throw new TestbedError(`VM ${this.name}: ${(e as Error).message}`);
    }
  }

  private checkRange(gpa: number, len: number, what: string): void {
    const size = this.ram.size;
    if (!Number.isInteger(gpa) || !Number.isInteger(len) || gpa < 0 || len < 0 || gpa + len > size) {
      throw new TestbedError(`VM ${this.name}: ${what} at ${typeof gpa === "number" && Number.isFinite(gpa) ? HEX(gpa) : String(gpa)} + ${len} bytes is outside its RAM (0..${HEX(size)})`);
    }
  }

  /** Issue an IO without waiting: run the clock (runFor/runUntil/wait) to complete it. */
  submit(op: BlkOp, lba: number, blocks: number, data?: Uint8Array): IoHandle {
    return this.tb.issue(this, op, lba, blocks, data);
  }

  /** Read `blocks` blocks at `lba`; runs the clock until the read completes. Rejects with IoError on a bad status. */
  async read(lba: number, blocks = 1): Promise<Uint8Array> {
    const r = await this.tb.wait(this.submit(BlkOp.READ, lba, blocks));
    return this.ok(r, "read", lba).data!;
  }

  /** Write `data` (whole blocks) at `lba`; runs the clock until the write completes. */
  async write(lba: number, data: Uint8Array): Promise<void> {
    if (data.length === 0 || data.length % this.blockSize !== 0) {
      throw new TestbedError(`VM ${this.name}: write of ${data.length} bytes is not a whole number of ${this.blockSize}-byte blocks`);
    }
    this.ok(await this.tb.wait(this.submit(BlkOp.WRITE, lba, data.length / this.blockSize, data)), "write", lba);
  }

  async flush(): Promise<void> { this.ok(await this.tb.wait(this.submit(BlkOp.FLUSH, 0, 0)), "flush", 0); }
  async discard(lba: number, blocks: number): Promise<void> { this.ok(await this.tb.wait(this.submit(BlkOp.DISCARD, lba, blocks)), "discard", lba); }
  async writeZeroes(lba: number, blocks: number): Promise<void> { this.ok(await this.tb.wait(this.submit(BlkOp.WRITE_ZEROES, lba, blocks)), "write-zeroes", lba); }

  private ok(r: IoResult, op: string, lba: number): IoResult {
    if (r.status !== 0) throw new IoError(this.name, op, lba, r.status);
    return r;
  }

  /** @internal guest buffer for an API IO. */
  takeBuffer(bytes: number): number {
    if (bytes === 0) return 0;
    if (this.arena < 0) {
      const size = Math.min(ARENA_BYTES, this.ram.size);
      try {
        this.arena = this.ram.alloc(size, 4096);
      } catch {
        throw new TestbedError(`VM ${this.name}: no guest RAM left for IO buffers (give the VM more "ram" in the scenario)`);
      }
    }
    if (this.inflight === 0) this.arenaNext = 0;
    const at = Math.ceil(this.arenaNext / 512) * 512;
    if (at + bytes > ARENA_BYTES || this.arena + at + bytes > this.ram.size) {
      throw new TestbedError(`VM ${this.name}: ${bytes} bytes of IO do not fit in the ${ARENA_BYTES >> 10} KiB of API IO buffers (${this.inflight} IOs in flight)`);
    }
    this.arenaNext = at + bytes;
    return this.arena + at;
  }
}

/** A testbed: one DPU card, its VMs, the virtual clock, hooks, faults, trace and snapshots. */
export class DpuTestbed {
  readonly vms: VmHandle[];
  /** Records events while started (`trace.start()` or CreateOptions.trace). */
  readonly trace: TraceControl;
  private readonly listeners = new Map<EventKind, Set<(e: TestbedEvent) => void>>();
  private readonly watches: Watch[] = [];
  private scheduled: Scheduled[] = [];
  private doorbellRules: DoorbellRule[] = [];
  private readonly ios = new Map<number, ApiIo>();
  private nextTag = API_TAG_BASE;
  private seq = 0;
  private schedSeq = 0;
  private dmaTraceOn = false;
  private stateSnapshot: Map<string, string> | undefined;
  /** The NIC card records its WQE fetches while someone listens to "wqe". */
  private wqeTraceOn = false;
  /** Each storage controller's state as "controller" events report it, while someone listens. */
  private controllerStates: string[] | undefined;
  private readonly realDoorbell: (f: number, q: number) => void;
  private readonly trDv: DataView;
  private readonly reaped: ApiIo[] = [];
  private closed = false;
  /** The fabric's event hook is installed (someone listens to frames or links). */
  private fabricOn = false;
  private frameEvents = false;
  private frameRules: FrameRule[] = [];
  /** The link way ("ab"/"ba") that goes from the DPU to the NIC. */
  private readonly toTarget: "ab" | "ba" = "ab";

  /** @internal use createTestbed() */
  constructor(readonly testbed: Testbed, readonly build: { workload: boolean; hostBackends: boolean }, private readonly faulty: (FaultyBackend | undefined)[]) {
    const card = testbed.card;
    this.trDv = card.dv;
    this.vms = testbed.drivers.map((d, i) => new VmHandle(this, i, testbed.scenario.vms[i]!, d));
    this.trace = new TraceControl(this);
    const remote = testbed.remote;
    if (remote) this.toTarget = remote.link.a.card.memory === card.memory ? "ab" : "ba";
    // Doorbells pass through here: hooks see them, faults drop or delay them.
    this.realDoorbell = card.doorbell.bind(card);
    card.doorbell = (f: number, q: number) => this.onDoorbell(f, q);
    // Interrupts: the card delivers them during poll(), while card.now is the poll's start.
    const handlers = (card as unknown as { irqHandlers: (((v: number) => void) | undefined)[] }).irqHandlers;
    handlers.forEach((h, f) => {
      if (!h) return;
      handlers[f] = (bits: number) => {
        if (this.listening("irq")) this.emit({ kind: "irq", vm: this.vms[f]?.name ?? `func${f}`, func: f, vectors: bits });
        h(bits);
      };
    });
    // Completions: API tags to the API, the rest to the job.
    for (const vm of this.vms) {
      const drv = vm.driver;
      const realReap = drv.reap.bind(drv);
      drv.reap = (done) => realReap((tag, status) => {
        if (tag >= API_TAG_BASE) this.apiDone(tag, status);
        else {
          if (this.listening("completion")) this.emit({ kind: "completion", vm: vm.name, tag, status, source: "job" });
          done(tag, status);
        }
      });
      if (this.build.workload) {
        const realSubmit = drv.submit.bind(drv);
        drv.submit = (op, lba, n, gpa, tag) => {
          const ok = realSubmit(op, lba, n, gpa, tag);
          if (ok && tag < API_TAG_BASE && this.listening("submit")) this.emit({ kind: "submit", vm: vm.name, tag, op: OP_NAMES[op] ?? String(op), lba, blocks: n, source: "job" });
          return ok;
        };
      }
    }
  }

  // ---- reaching the parts ----

  get scenario(): Scenario { return this.testbed.scenario; }
  /** The DPU card: memory, firmware instance, BAR register files. */
  get card(): Card { return this.testbed.card; }
  /** The DPU (today: its one card): counters, errors, in-flight requests. */
  get dpu(): { card: Card; counters(): Record<string, number>; errors(): Record<string, number>; inFlight(): number } {
    const card = this.card;
    return { card, counters: () => card.counters(), errors: () => card.errors(), inFlight: () => card.inFlight() };
  }
  /** Storage backends by VM (the host-served ones; a memory disk served inline is a view of card memory). */
  get backends(): BlockBackend[] { return this.card.disks; }
  /**
   * The storage side of a testbed with remote disks: `fabric`, `link` (DPU ↔ NIC), `nic`,
   * `nicCard`, `controllers` (NVMe-oF associations), `report()`. Throws TestbedError on a
   * testbed without remote disks.
   */
  get remote(): RemoteStorage {
    const r = this.testbed.remote;
    if (!r) throw new TestbedError(`remote: ${NEEDS_REMOTE}`);
    return r;
  }
  /** The fabric links (with remote disks: the DPU ↔ NIC link "dpu-nic"; else none). */
  get links(): Link[] { return this.testbed.remote ? [this.testbed.remote.link] : []; }
  /** A link by name (default: the only one); throws naming the links there are. */
  link(name?: string): Link {
    const r = this.testbed.remote;
    if (!r) throw new TestbedError(`link${name === undefined ? "" : ` "${name}"`}: ${NEEDS_REMOTE}`);
    if (name !== undefined && name !== r.link.name) throw new TestbedError(`unknown link "${name}" (this testbed has "${r.link.name}")`);
    return r.link;
  }
  /** The storage-side NIC (its card, controllers, bindings, stats); throws without remote disks. */
  get nic(): StorageNic {
    const r = this.testbed.remote;
    if (!r) throw new TestbedError(`nic: ${NEEDS_REMOTE}`);
    return r.nic;
  }
  /** The storage controllers behind the NIC (none without remote disks); `controllerStats()` for their figures. */
  get controllers(): StorageController[] { return this.testbed.remote?.nic.controllers ?? []; }
  /** Each controller's figures: commands by name, errors, bytes, WQEs, doorbells, in flight. */
  controllerStats(): ControllerStats[] { return this.testbed.remote?.nic.stats().controllers ?? []; }

  /** A VM by name or index; throws naming the VMs there are. */
  vm(which: string | number): VmHandle {
    const v = typeof which === "number" ? this.vms[which] : this.vms.find((x) => x.name === which);
    if (!v) throw new TestbedError(`unknown VM ${typeof which === "number" ? which : `"${which}"`} (this testbed has ${this.vms.map((x, i) => `${i}: "${x.name}"`).join(", ")})`);
    return v;
  }

  // ---- counters ----

  /** A firmware counter of the DPU by name (see Counter in assembly/counters.ts); throws on an unknown name. */
  counter(name: string): number { return readCounter(this.card, name, "counters()"); }
  counters(): Record<string, number> { return this.card.counters(); }
  /** Non-zero `err_*` counters by reason. */
  errors(): Record<string, number> { return this.card.errors(); }
  /** A firmware counter of the storage-side NIC's card by name (the same firmware, the same names), e.g. "rdma_rc_resends". */
  nicCounter(name: string): number {
    const r = this.testbed.remote;
    if (!r) throw new TestbedError(`nicCounter("${name}"): ${NEEDS_REMOTE}`);
    return readCounter(r.nicCard, name, "nicCounters()");
  }
  nicCounters(): Record<string, number> { return this.remote.nicCard.counters(); }
  /** Non-zero `err_*` counters of the NIC's card by reason (e.g. err_nic_dif_guard). */
  nicErrors(): Record<string, number> { return this.remote.nicCard.errors(); }

  // ---- the virtual clock ----

  /** Virtual time now (ns). */
  get now(): number { return this.card.now; }

  /** Run `rounds` rounds (one firmware poll each). */
  step(rounds = 1): number {
    if (!Number.isInteger(rounds) || rounds < 0) throw new TestbedError(`step: ${rounds} rounds (want a whole number ≥ 0)`);
    this.checkOpen();
    for (let i = 0; i < rounds; i++) this.round();
    return this.now;
  }

  /** Run the clock for `d` (ns or "5ms"): rounds until it has advanced at least that far. */
  runFor(d: Duration): number {
    const ns = duration(d, "runFor");
    if (ns < 0) throw new TestbedError(`runFor: ${ns} ns would run the clock backwards (now ${this.now} ns)`);
    return this.runTo(this.now + ns, "runFor");
  }

  /** Run the clock to virtual time `t` (ns or duration string, absolute). */
  runTo(t: Duration, what = "runTo"): number {
    const end = duration(t, what);
    if (end < this.now) throw new TestbedError(`${what}: ${end} ns is before now (${this.now} ns); the clock only runs forwards`);
    this.checkOpen();
    while (this.now < end) this.round();
    return this.now;
  }

  /** Run rounds until `pred()` holds (checked before each round); throws after `timeout` of virtual time. */
  runUntil(pred: () => boolean, opts: { timeout?: Duration; what?: string } = {}): number {
    const timeout = duration(opts.timeout ?? DEFAULT_TIMEOUT_NS, "runUntil timeout", true);
    if (timeout < 0) throw new TestbedError(`runUntil: timeout ${timeout} ns is negative`);
    this.checkOpen();
    const end = this.now + timeout;
    while (!pred()) {
      if (this.now >= end) throw new TestbedError(`runUntil: ${opts.what ?? "the condition"} did not hold within ${timeout} ns of virtual time (now ${this.now} ns)`);
      this.round();
    }
    return this.now;
  }

  /** Run the clock until the IOs complete (each handle's `done` then resolves); returns their results. */
  async wait(h: IoHandle, opts?: { timeout?: Duration }): Promise<IoResult>;
  async wait(h: IoHandle[], opts?: { timeout?: Duration }): Promise<IoResult[]>;
  async wait(h: IoHandle | IoHandle[], opts: { timeout?: Duration } = {}): Promise<IoResult | IoResult[]> {
    const list = Array.isArray(h) ? h : [h];
    this.runUntil(() => list.every((x) => x.result !== undefined), { timeout: opts.timeout,
      what: `${list.length === 1 ? `${list[0]!.op} at LBA ${list[0]!.lba} on ${list[0]!.vm}` : `${list.length} IOs`} completing` });
    const rs = list.map((x) => x.result!);
    return Array.isArray(h) ? rs : rs[0]!;
  }

  /**
   * Run the scenario's jobs to their end (the testbed must be created with workload: true)
   * and report like runScenario; a restored testbed continues where its snapshot was taken.
   */
  runWorkload(opts: { stallRounds?: number; onProgress?: (p: Progress) => void; progressEvery?: number } = {}): RunResult {
    if (!this.build.workload) throw new TestbedError("runWorkload: this testbed was created without workload: true");
    this.checkOpen();
    // From virtual time 0 and the testbed's own round count, so a restored run reports the same figures.
    return this.testbed.runLoop(() => this.round(), opts, 0, () => this.rounds);
  }

  private checkOpen(): void { if (this.closed) throw new TestbedError("this testbed is closed"); }

  /** One round: workload submits, due faults fire, one firmware poll, the clock advances, completions are reaped. */
  private round(): number {
    const { card, jobs } = this.testbed;
    const clock = this.testbed.clock;
    const workload = this.build.workload;
    this.rounds++;
    if (workload) for (const j of jobs) if (!j.done) j.submit(card.now);
    this.fireDue();
    const start = card.now;
    const pollEv = this.listening("poll");
    const taken = this.testbed.poll(this.scenario.poll_budget);
    const cost = clock.charge(taken);
    card.now = start + cost;
    if (this.dmaTraceOn) this.drainDma(start);
    if (this.wqeTraceOn) this.drainWqes(card.now);
    if (pollEv) this.emit({ kind: "poll", taken, costNs: cost }, start);
    const pollNs = clock.model.pollNs;
    const step = taken > 0 ? (cost - pollNs) / taken : 0;
    let reaped = 0;
    for (const vm of this.vms) {
      const j = jobs[vm.index]!;
      if (workload && !j.done) reaped += j.reap(start + pollNs + reaped * step, step, card.now);
      else if (vm.inflight > 0) vm.driver.reap(() => {});
    }
    if (this.stateSnapshot) this.diffStates();
    if (this.controllerStates) this.diffControllers();
    if (this.frameRules.length) this.pruneFrameRules();
    this.settle();
    return reaped + this.lastApiReaped;
  }
  private lastApiReaped = 0;
  /** Rounds run since the testbed was created (a restored testbed continues the count). */
  rounds = 0;

  // ---- API IO ----

  /** @internal */
  issue(vm: VmHandle, op: BlkOp, lba: number, blocks: number, data?: Uint8Array): IoHandle {
    this.checkOpen();
    const name = OP_NAMES[op];
    if (name === undefined) throw new TestbedError(`VM ${vm.name}: unknown operation ${op}`);
    if (!Number.isInteger(lba) || !Number.isInteger(blocks) || lba < 0 || blocks < 0) {
      throw new TestbedError(`VM ${vm.name}: ${name} at LBA ${lba} of ${blocks} blocks: want whole numbers ≥ 0`);
    }
    const bytes = op === BlkOp.READ || op === BlkOp.WRITE ? blocks * vm.blockSize : 0;
    if (op === BlkOp.WRITE && (!data || data.length !== bytes)) {
      throw new TestbedError(`VM ${vm.name}: write of ${blocks} blocks needs ${bytes} bytes of data, got ${data?.length ?? "none"}`);
    }
    const gpa = vm.takeBuffer(bytes);
    if (op === BlkOp.WRITE) vm.ram.u8.set(data!, gpa);
    const tag = this.nextTag++;
    if (!vm.driver.submit(op, lba, blocks, gpa, tag)) {
      throw new TestbedError(`VM ${vm.name}: the ${vm.driver.name} queues are full (${vm.inflight} API IOs in flight); run the clock first`);
    }
    const io: ApiIo = { tag, vm, op, lba, blocks, gpa, bytes, submitted: this.now };
    const done = new Promise<IoResult>((resolve, reject) => { io.resolve = resolve; io.reject = reject; });
    this.ios.set(tag, io);
    vm.inflight++;
    if (this.listening("submit")) this.emit({ kind: "submit", vm: vm.name, tag, op: name, lba, blocks, source: "api" });
    vm.driver.kick();
    return {
      tag, vm: vm.name, op: name, lba, blocks, done,
      get result() { return io.result; },
    };
  }

  private apiDone(tag: number, status: number): void {
    const io = this.ios.get(tag);
    if (!io) return;
    this.ios.delete(tag);
    io.vm.inflight--;
    const data = io.op === BlkOp.READ ? io.vm.ram.u8.slice(io.gpa, io.gpa + io.bytes) : undefined;
    io.result = { status, data, submitted: io.submitted, completed: this.now };
    if (this.listening("completion")) {
      this.emit({ kind: "completion", vm: io.vm.name, tag, status, source: "api", op: OP_NAMES[io.op], lba: io.lba, blocks: io.blocks, submitted: io.submitted });
    }
    this.reaped.push(io);
  }

  private settle(): void {
    this.lastApiReaped = this.reaped.length;
    for (const io of this.reaped) io.resolve!(io.result!);
    this.reaped.length = 0;
  }

  // ---- hooks ----

  /**
   * Subscribe to events of a kind; returns the unsubscribe function. "frame", "link",
   * "controller" and "wqe" need remote disks (else TestbedError).
   */
  on<K extends EventKind>(kind: K, fn: (e: EventOf<K>) => void): () => void {
    if (!(LIVE_EVENT_KINDS as readonly string[]).includes(kind) && !(RESERVED_EVENT_KINDS as readonly string[]).includes(kind)) {
      throw new TestbedError(`on: unknown event kind "${kind}" (have ${[...LIVE_EVENT_KINDS, ...RESERVED_EVENT_KINDS].join(", ")})`);
    }
    if ((kind === "frame" || kind === "link" || kind === "controller" || kind === "wqe") && !this.testbed.remote) throw new TestbedError(`on("${kind}"): ${NEEDS_REMOTE}`);
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    const f = fn as (e: TestbedEvent) => void;
    set.add(f);
    this.refresh();
    return () => { set!.delete(f); this.refresh(); };
  }

  /** Is anyone (a hook, the trace, a fault trigger) interested in this kind? */
  private listening(kind: EventKind): boolean {
    return (this.listeners.get(kind)?.size ?? 0) > 0 || this.trace.wants(kind) || this.watches.some((w) => w.on === kind || typeof w.on === "function");
  }

  /** Turn the firmware DMA trace and the state watcher on or off as listeners come and go. */
  private refresh(): void {
    const dma = this.listening("dma");
    if (dma !== this.dmaTraceOn) {
      this.dmaTraceOn = dma;
      const flags = this.trDv.getUint32(M.TRACE_CTRL + M.TRACE_FLAGS_OFF, true);
      this.trDv.setUint32(M.TRACE_CTRL + M.TRACE_FLAGS_OFF, dma ? flags | M.TRACE_F_DMA : flags & ~M.TRACE_F_DMA, true);
      if (dma) this.trDv.setUint32(M.TRACE_CTRL + M.TRACE_CONS_OFF, this.trDv.getUint32(M.TRACE_CTRL + M.TRACE_PROD_OFF, true), true);
    }
    const st = this.listening("state");
    if (st && !this.stateSnapshot) this.stateSnapshot = this.readStates();
    else if (!st) this.stateSnapshot = undefined;
    const remote = this.testbed.remote;
    const wqe = remote !== undefined && this.listening("wqe");
    if (wqe !== this.wqeTraceOn) {
      this.wqeTraceOn = wqe;
      const dv = remote!.nicCard.dv;
      const flags = dv.getUint32(M.TRACE_CTRL + M.TRACE_FLAGS_OFF, true);
      dv.setUint32(M.TRACE_CTRL + M.TRACE_FLAGS_OFF, wqe ? flags | M.TRACE_F_WQE : flags & ~M.TRACE_F_WQE, true);
      if (wqe) dv.setUint32(M.TRACE_CTRL + M.TRACE_CONS_OFF, dv.getUint32(M.TRACE_CTRL + M.TRACE_PROD_OFF, true), true);
    }
    const ctl = remote !== undefined && this.listening("controller");
    if (ctl && !this.controllerStates) this.controllerStates = this.readControllers();
    else if (!ctl) this.controllerStates = undefined;
    if (remote) {
      this.frameEvents = this.listening("frame");
      const on = this.frameEvents || this.listening("link");
      if (on !== this.fabricOn) {
        this.fabricOn = on;
        remote.fabric.onEvent = on ? this.onFabric : undefined;
      }
    }
  }

  /** The fabric's event hook, installed only while someone listens to frames or links. */
  private readonly onFabric = (e: FabricEvent): void => {
    if (e.kind === "link") {
      this.emit({ kind: "link", link: e.link, up: e.up });
      return;
    }
    if (!this.frameEvents) return;
    const s = frameSummary(e.bytes, e.way === this.toTarget ? "to-target" : "to-host");
    this.emit({ kind: "frame", link: e.link, dir: e.dir, ...s, ...(e.dropped ? { dropped: e.dropped } : {}) }, e.ns);
  };

  /** @internal */
  refreshListeners(): void { this.refresh(); }

  private emit(e: NewEvent, t = this.now): void {
    const ev = { t, seq: this.seq++, ...e } as TestbedEvent;
    this.trace.record(ev);
    const set = this.listeners.get(ev.kind);
    if (set) for (const fn of set) fn(ev);
    if (this.watches.length) {
      for (const w of [...this.watches]) {
        if (w.state.cancelled) continue;
        if (typeof w.on === "string" ? w.on === ev.kind : w.on(ev)) {
          this.watches.splice(this.watches.indexOf(w), 1);
          w.run();
          this.refresh(); // the fabric's and the firmware's event sources stop when nobody listens
        }
      }
    }
  }

  private onDoorbell(f: number, q: number): void {
    const vm = this.vms[f];
    let dropped = false, delayedUntil: number | undefined;
    for (const r of this.doorbellRules) {
      if (r.left <= 0 || r.state.cancelled || r.vm !== f || (r.queue !== undefined && r.queue !== q)) continue;
      r.left--;
      r.state.fired++;
      if (r.delay === undefined) dropped = true;
      else { delayedUntil = this.now + r.delay; this.schedule(delayedUntil, () => this.realDoorbell(f, q)); }
      break;
    }
    if (!dropped && delayedUntil === undefined) this.realDoorbell(f, q);
    if (vm && this.listening("doorbell")) {
      this.emit({ kind: "doorbell", vm: vm.name, func: f, queue: q, ...(dropped ? { dropped } : {}), ...(delayedUntil !== undefined ? { delayedUntil } : {}) });
    }
  }

  /** The NIC's WQE fetches of this round (its card's trace ring), as "wqe" events at time t. */
  private drainWqes(t: number): void {
    const dv = this.testbed.remote!.nicCard.dv;
    const prod = dv.getUint32(M.TRACE_CTRL + M.TRACE_PROD_OFF, true);
    let cons = dv.getUint32(M.TRACE_CTRL + M.TRACE_CONS_OFF, true);
    for (; cons !== prod; cons = (cons + 1) >>> 0) {
      const e = M.TRACE_RING + (cons % M.TRACE_ENTRIES) * M.TRACE_ENTRY_SIZE;
      const type = dv.getUint16(e + M.TRACE_E_DIR, true);
      const qc = dv.getBigUint64(e + M.TRACE_E_GPA, true);
      const refused = dv.getUint32(e + M.TRACE_E_CARD, true);
      this.emit({
        kind: "wqe", controller: String.fromCharCode(65 + dv.getUint32(e + M.TRACE_E_GUEST, true)), index: dv.getUint32(e + M.TRACE_E_LEN, true),
        stage: WQE_STAGES[type] ?? "initial", qpn: Number(qc >> 16n), cid: Number(qc & 0xffffn),
        ...(refused ? { refused: Counter[refused] ?? `counter ${refused}` } : {}),
      }, t);
    }
    dv.setUint32(M.TRACE_CTRL + M.TRACE_CONS_OFF, cons, true);
  }

  private drainDma(t: number): void {
    const dv = this.trDv;
    const prod = dv.getUint32(M.TRACE_CTRL + M.TRACE_PROD_OFF, true);
    let cons = dv.getUint32(M.TRACE_CTRL + M.TRACE_CONS_OFF, true);
    for (; cons !== prod; cons = (cons + 1) >>> 0) {
      const e = M.TRACE_RING + (cons % M.TRACE_ENTRIES) * M.TRACE_ENTRY_SIZE;
      const kind = dv.getUint16(e + M.TRACE_E_KIND, true);
      const dir = dv.getUint16(e + M.TRACE_E_DIR, true);
      const guest = dv.getUint32(e + M.TRACE_E_GUEST, true);
      const gpa = Number(dv.getBigUint64(e + M.TRACE_E_GPA, true));
      const len = dv.getUint32(e + M.TRACE_E_LEN, true);
      this.emit({ kind: "dma", vm: this.vms[guest]?.name ?? `guest${guest}`, guest, gpa, len, dir: dir === 1 ? "read" : dir === 2 ? "write" : "map", denied: kind === 2 }, t);
    }
    dv.setUint32(M.TRACE_CTRL + M.TRACE_CONS_OFF, cons, true);
  }

  private readStates(): Map<string, string> {
    const m = new Map<string, string>();
    for (const vm of this.vms) {
      const model = vm.model as { state?: number } | undefined;
      if (vm.device === "virtio-blk") m.set(`${vm.index}/device_status`, DevState[model?.state ?? 0] ?? String(model?.state));
      else {
        m.set(`${vm.index}/controller`, CtrlState[model?.state ?? 0] ?? String(model?.state));
        for (let q = 0; q < M.MAX_QUEUES; q++) {
          const s = this.card.dv.getUint32(M.QUEUE_TABLE_BASE + (vm.func * M.MAX_QUEUES + q) * M.QUEUE_ENTRY_SIZE, true);
          m.set(`${vm.index}/sq/${q}`, SQ_STATES[s] ?? String(s));
        }
      }
    }
    return m;
  }

  /**
   * A storage controller's state as the NIC sees it: "up", "link-down" (its link cut), "crashed",
   * "lost" (declared lost by a missed heartbeat, its QPs with a standby) or "off".
   */
  private readControllers(): string[] {
    return this.testbed.remote!.nic.failovers().controllers.map((c) =>
      c.crashed ? "crashed" : c.link === "down" ? "link-down" : c.nic === "up" ? "up" : c.nic);
  }

  private diffControllers(): void {
    const now = this.readControllers();
    const old = this.controllerStates!;
    this.controllerStates = now;
    now.forEach((to, k) => { if (to !== old[k]) this.emit({ kind: "controller", controller: String.fromCharCode(65 + k), from: old[k]!, to }); });
  }

  private diffStates(): void {
    const now = this.readStates();
    const old = this.stateSnapshot!;
    this.stateSnapshot = now;
    for (const [k, to] of now) {
      const from = old.get(k);
      if (from === undefined || from === to) continue;
      const [vi, machine, q] = k.split("/");
      this.emit({ kind: "state", vm: this.vms[Number(vi)]!.name, machine: machine as "controller", ...(q !== undefined ? { queue: Number(q) } : {}), from, to });
    }
  }

  // ---- faults ----

  /**
   * Inject a fault now, at a virtual time (`at`), or on the first event matching `on`.
   * One-shot faults (corrupt-guest-memory, reset-device, link-down/up, corrupt-dif) act once;
   * armed faults (drop/delay-doorbell, backend-error, drop/corrupt/delay-frame) then hit the
   * next `count` (default 1) matches. Arguments are checked here, when the fault is injected.
   */
  inject(fault: Fault, when: Trigger = {}): FaultHandle {
    this.checkOpen();
    if ((RESERVED_FAULTS as readonly string[]).includes(fault.kind)) {
      throw new TestbedError(`inject: "${fault.kind}" is reserved; faults today: ${FAULTS_TODAY}`);
    }
    const state: FaultState = { kind: fault.kind, fired: 0, cancelled: false };
    const act = this.faultAction(fault as Exclude<Fault, { kind: (typeof RESERVED_FAULTS)[number] }>, state);
    const handle: FaultHandle = { kind: fault.kind, get fired() { return state.fired; }, cancel: () => { state.cancelled = true; } };
    if (when.at !== undefined) {
      const at = duration(when.at, "inject at");
      if (at < this.now) throw new TestbedError(`inject: at ${at} ns is in the past (now ${this.now} ns)`);
      const run = when.on === undefined ? act : () => this.watch(when.on!, act, state);
      this.schedule(at, () => { if (!state.cancelled) run(); });
    } else if (when.on !== undefined) this.watch(when.on, act, state);
    else act();
    return handle;
  }

  private watch(on: EventKind | ((e: TestbedEvent) => boolean), run: () => void, state: FaultState): void {
    if (typeof on === "string" && !(LIVE_EVENT_KINDS as readonly string[]).includes(on)) {
      throw new TestbedError(`inject: trigger on "${on}": ${(RESERVED_EVENT_KINDS as readonly string[]).includes(on) ? "that event kind is reserved" : "unknown event kind"}`);
    }
    if ((on === "frame" || on === "link" || on === "controller" || on === "wqe") && !this.testbed.remote) throw new TestbedError(`inject: trigger on "${on}": ${NEEDS_REMOTE}`);
    this.watches.push({ on, run, state });
    this.refresh();
  }

  private faultAction(f: Exclude<Fault, { kind: (typeof RESERVED_FAULTS)[number] }>, state: FaultState): () => void {
    switch (f.kind) {
      case "drop-frame": case "corrupt-frame": case "delay-frame": return this.frameFault(f, state);
      case "link-down": case "link-up": return this.linkFault(f, state);
      case "corrupt-dif": return this.difFault(f, state);
      case "crash-controller": return this.crashFault(f, state);
    }
    const vm = this.vm(f.vm);
    const fired = (detail: Record<string, unknown>) => {
      this.emit({ kind: "fault", fault: f.kind, vm: vm.name, detail });
    };
    switch (f.kind) {
      case "corrupt-guest-memory": {
        const len = f.bytes?.length ?? f.length ?? 1;
        if (f.bytes === undefined && f.xor === undefined) throw new TestbedError("inject corrupt-guest-memory: give bytes (to write) or xor (to flip)");
        vm.peek(f.gpa, len); // range check now, with the VM named
        return () => {
          if (state.cancelled) return;
          const u8 = vm.ram.u8;
          if (f.bytes !== undefined) u8.set(f.bytes, f.gpa);
          else for (let i = 0; i < len; i++) u8[f.gpa + i] ^= f.xor!;
          state.fired++;
          fired({ gpa: f.gpa, length: len });
        };
      }
      case "reset-device":
        return () => {
          if (state.cancelled) return;
          const model = vm.model as { mmioWrite?: (o: number, s: 1 | 2 | 4, v: number) => void; read?: (o: number) => number; write?: (o: number, v: number) => void };
          if (vm.device === "virtio-blk") model.mmioWrite!(BAR_COMMON + CC_DEVICE_STATUS, 1, 0);
          else model.write!(NVME_REG_CC, model.read!(NVME_REG_CC) & ~1);
          state.fired++;
          fired({});
          if (this.stateSnapshot) this.diffStates();
        };
      case "drop-doorbell":
      case "delay-doorbell": {
        const delay = f.kind === "delay-doorbell" ? duration(f.delay, "inject delay-doorbell delay") : undefined;
        if (delay !== undefined && delay < 0) throw new TestbedError(`inject delay-doorbell: delay ${delay} ns is negative`);
        return () => { this.doorbellRules.push({ vm: vm.index, queue: f.queue, left: f.count ?? 1, delay, state }); };
      }
      case "backend-error": {
        const b = this.faulty[vm.index];
        if (!b) throw new TestbedError(`inject backend-error: VM ${vm.name}'s disk is served inline by the firmware; create the testbed with hostBackends: true`);
        return () => { b.rules.push({ op: f.op, lba: f.lba, left: f.count ?? 1, handle: state }); };
      }
    }
  }

  /** The remote storage, or a TestbedError naming the fault and how to get a fabric. */
  private needRemote(what: string): RemoteStorage {
    const r = this.testbed.remote;
    if (!r) throw new TestbedError(`inject ${what}: ${NEEDS_REMOTE}`);
    return r;
  }

  /**
   * drop/corrupt/delay-frame → Link.inject. The match passed to the link is ours: it decodes
   * the frame for the test's match and counts a hit only when it says yes, since the link uses
   * up the first armed fault whose match holds; past `count` hits it says no (both ways share
   * the count) and the round disarms it.
   */
  private frameFault(f: Extract<Fault, { kind: (typeof FRAME_FAULTS)[number] }>, state: FaultState): () => void {
    const remote = this.needRemote(f.kind);
    const count = f.count ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new TestbedError(`inject ${f.kind}: count ${f.count} (want a whole number ≥ 1)`);
    if (f.dir !== undefined && f.dir !== "to-target" && f.dir !== "to-host") throw new TestbedError(`inject ${f.kind}: dir "${String(f.dir)}" (want "to-target" or "to-host")`);
    if (f.match !== undefined && typeof f.match !== "function") throw new TestbedError(`inject ${f.kind}: match must be a function of the frame's summary`);
    let delayNs: number | undefined;
    if (f.kind === "delay-frame" && f.delay !== undefined) {
      delayNs = duration(f.delay, "inject delay-frame delay");
      if (delayNs < 0) throw new TestbedError(`inject delay-frame: delay ${delayNs} ns is negative`);
    }
    const bit = f.kind === "corrupt-frame" ? f.bit : undefined;
    if (bit !== undefined && !(Number.isInteger(bit) && bit >= 0)) throw new TestbedError(`inject corrupt-frame: bit ${bit} (want a whole number ≥ 0; it is taken modulo the frame's bits)`);
    const dirs: FrameDirection[] = f.dir ? [f.dir] : ["to-target", "to-host"];
    const kind = f.kind === "drop-frame" ? "drop" : f.kind === "corrupt-frame" ? "corrupt" : "delay";
    return () => {
      if (state.cancelled) return;
      // One armed fault per way (the link's match is not told the way), sharing the count.
      const disarms = dirs.map((dir) => remote.link.inject({
        kind, dir: dir === "to-target" ? this.toTarget : this.toTarget === "ab" ? "ba" : "ab", count,
        ...(delayNs !== undefined ? { delayNs } : {}), ...(bit !== undefined ? { bit } : {}),
        match: (bytes) => {
          if (state.cancelled || state.fired >= count) return false;
          const fault = this.listening("fault");
          const sum = f.match || fault ? frameSummary(bytes, dir) : undefined;
          if (f.match && !f.match(sum!)) return false;
          state.fired++;
          if (fault) this.emit({ kind: "fault", fault: f.kind, detail: { ...sum } });
          return true;
        },
      }));
      this.frameRules.push({ state, count, disarm: () => { for (const d of disarms) d(); } });
    };
  }

  /** Frame faults that hit their count or were cancelled leave the link's armed list. */
  private pruneFrameRules(): void {
    this.frameRules = this.frameRules.filter((r) => {
      if (!r.state.cancelled && r.state.fired < r.count) return true;
      r.disarm();
      return false;
    });
  }

  private linkFault(f: Extract<Fault, { kind: "link-down" | "link-up" }>, state: FaultState): () => void {
    this.needRemote(f.kind);
    const link = this.link(f.link);
    const up = f.kind === "link-up";
    const back = f.kind === "link-down" && f.for !== undefined ? duration(f.for, "inject link-down for") : undefined;
    if (back !== undefined && back < 0) throw new TestbedError(`inject link-down: for ${back} ns is negative`);
    return () => {
      if (state.cancelled) return;
      state.fired++;
      if (this.listening("fault")) this.emit({ kind: "fault", fault: f.kind, detail: { link: link.name, ...(back !== undefined ? { for: back } : {}) } });
      link.setUp(up); // the fabric reports the change as a "link" event
      if (back !== undefined) this.schedule(this.now + back, () => link.setUp(true));
    };
  }

  private crashFault(f: Extract<Fault, { kind: "crash-controller" }>, state: FaultState): () => void {
    const remote = this.needRemote("crash-controller");
    const n = remote.nic.controllers.length;
    const k = typeof f.controller === "number" ? f.controller : f.controller.length === 1 ? f.controller.charCodeAt(0) - 65 : -1;
    if (!Number.isInteger(k) || k < 0 || k >= n) {
      throw new TestbedError(`inject crash-controller: controller ${JSON.stringify(f.controller)} is not one of the target's ${n} (A to ${String.fromCharCode(64 + n)}, or 0 to ${n - 1})`);
    }
    const back = f.for !== undefined ? duration(f.for, "inject crash-controller for") : undefined;
    if (back !== undefined && back < 0) throw new TestbedError(`inject crash-controller: for ${back} ns is negative`);
    const name = String.fromCharCode(65 + k);
    return () => {
      if (state.cancelled) return;
      state.fired++;
      if (this.listening("fault")) this.emit({ kind: "fault", fault: "crash-controller", detail: { controller: name, ...(back !== undefined ? { for: back } : {}) } });
      remote.nic.crash(k);
      if (back !== undefined) this.schedule(this.now + back, () => remote.nic.restart(k));
    };
  }

  private difFault(f: Extract<Fault, { kind: "corrupt-dif" }>, state: FaultState): () => void {
    const remote = this.needRemote("corrupt-dif");
    const vm = this.vm(f.vm);
    const remoteVms = this.vms.filter((v) => v.spec.disk.transport === "rdma");
    const i = remoteVms.indexOf(vm);
    if (i < 0) throw new TestbedError(`inject corrupt-dif: VM ${vm.name}'s disk is local to the DPU; only remote disks (transport "rdma": ${remoteVms.map((v) => v.name).join(", ")}) sit behind the NIC's DIF check`);
    if (!this.scenario.target!.protection) throw new TestbedError(`inject corrupt-dif: the target has no end-to-end protection, so the corrupted block would read back wrong without an error; set "target": { "protection": true }`);
    if (!Number.isInteger(f.lba) || f.lba < 0 || f.lba >= vm.capacityBlocks) throw new TestbedError(`inject corrupt-dif: LBA ${f.lba} is outside VM ${vm.name}'s disk (0..${vm.capacityBlocks - 1})`);
    const byte = f.byte ?? 0;
    if (!Number.isInteger(byte) || byte < 0 || byte >= vm.blockSize) throw new TestbedError(`inject corrupt-dif: byte ${f.byte} is outside a ${vm.blockSize}-byte block`);
    return () => {
      if (state.cancelled) return;
      remote.corrupt(i, f.lba, byte);
      state.fired++;
      if (this.listening("fault")) this.emit({ kind: "fault", fault: "corrupt-dif", vm: vm.name, detail: { lba: f.lba, byte } });
    };
  }

  private schedule(at: number, run: () => void): void {
    this.scheduled.push({ at, seq: this.schedSeq++, run });
    this.scheduled.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  private fireDue(): void {
    while (this.scheduled.length && this.scheduled[0]!.at <= this.now) this.scheduled.shift()!.run();
  }

  /** @internal backend fault fired */
  backendFault(vmIndex: number, op: string, lba: number): void {
    this.emit({ kind: "fault", fault: "backend-error", vm: this.vms[vmIndex]!.name, detail: { op, lba } });
  }

  // ---- snapshots ----

  private walkOptions(): WalkOptions {
    // Armed backend faults are the test's, like hooks: not saved, not overwritten by a restore.
    const rules = this.faulty.flatMap((f) => (f ? [f.rules] : []));
    const remote = this.testbed.remote;
    // The NIC card's memory is saved as an image; the fabric's card index is topology, not state.
    const nic = remote ? [remote.nicCard.fw as object, (remote.fabric as unknown as { byMemory: object }).byMemory] : [];
    return {
      skipBuffers: new Set([this.card.memory.buffer, ...(remote ? [remote.nicCard.memory.buffer] : [])]),
      skipObjects: new Set<object>([this.card.fw as object, ...nic, ...rules]),
    };
  }

  /**
   * The whole testbed's state: card memory, host objects, clock, PRNGs. Hooks, armed faults
   * and the trace are the test's, not the testbed's: they are not in it. Refuses while IOs
   * issued through the API are in flight (their promises cannot be saved).
   */
  snapshot(): Snapshot {
    this.checkOpen();
    if (this.ios.size > 0) throw new TestbedError(`snapshot: ${this.ios.size} IOs issued through the API are in flight; run the clock until they complete first`);
    const remote = this.testbed.remote;
    for (const [i, d] of this.card.disks.entries()) {
      const inner = d instanceof FaultyBackend ? d.inner : d;
      if (inner.kind === "nvmeof") continue; // its blocks are in the target's backend, saved with the target
      if (!(inner instanceof MemoryBackend)) throw new TestbedError(`snapshot: VM ${this.vms[i]!.name}'s disk is a ${inner.kind} backend; only memory disks can be saved`);
    }
    if ((remote?.fabric as unknown as { capture?: unknown } | undefined)?.capture) throw new TestbedError("snapshot: the fabric writes a capture file, which a snapshot cannot hold; create the testbed without one");
    const layout = this.card.layout;
    return {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_VERSION,
      scenario: structuredClone(this.scenario),
      build: { ...this.build },
      now: this.now,
      // The DPU card, then (remote disks) the storage-side NIC's card.
      memories: [captureImage(this.card.u8, layout.bytes), ...(remote ? [captureImage(remote.nicCard.u8, remote.nicCard.layout.bytes)] : [])],
      host: saveState({ testbed: this.testbed, vms: this.vms.map((v) => ({ arena: (v as unknown as { arena: number }).arena })), nextTag: this.nextTag, rounds: this.rounds, seq: this.seq }, this.walkOptions()),
    };
  }

  /** Put this testbed back into a snapshot's state (it must be built from the same scenario and options). */
  restore(s: Snapshot): void {
    this.checkOpen();
    if (s.format !== SNAPSHOT_FORMAT || s.version !== SNAPSHOT_VERSION) throw new TestbedError(`restore: not a version ${SNAPSHOT_VERSION} wasm-dpu snapshot`);
    if (JSON.stringify(s.scenario) !== JSON.stringify(this.scenario)) throw new TestbedError(`restore: the snapshot is of scenario "${s.scenario.name}" with different settings; use restoreTestbed() to build its own testbed`);
    // workload is how the clock runs, not state: a snapshot taken without it can be resumed with the jobs running.
    if (s.build.hostBackends !== this.build.hostBackends) {
      throw new TestbedError(`restore: the snapshot was taken with hostBackends=${s.build.hostBackends}, this testbed has hostBackends=${this.build.hostBackends}`);
    }
    const mem = s.memories[0]!;
    const remote = this.testbed.remote;
    if (s.memories.length !== (remote ? 2 : 1) || mem.bytes !== this.card.layout.bytes) throw new TestbedError(`restore: memory image of ${mem.bytes} bytes, this card has ${this.card.layout.bytes}`);
    if (remote && s.memories[1]!.bytes !== remote.nicCard.layout.bytes) throw new TestbedError(`restore: NIC memory image of ${s.memories[1]!.bytes} bytes, this NIC card has ${remote.nicCard.layout.bytes}`);
    for (const io of this.ios.values()) io.reject!(new TestbedError(`${io.vm.name}: ${OP_NAMES[io.op]} at LBA ${io.lba} was in flight when the testbed was restored`));
    this.ios.clear();
    for (const v of this.vms) v.inflight = 0;
    restoreImage(mem, this.card.u8);
    if (remote) restoreImage(s.memories[1]!, remote.nicCard.u8);
    const state = { testbed: this.testbed, vms: this.vms.map(() => ({ arena: -1 })), nextTag: 0, rounds: 0, seq: 0 };
    applyState(state, s.host, this.walkOptions());
    this.vms.forEach((v, i) => { (v as unknown as { arena: number }).arena = state.vms[i]!.arena; });
    this.nextTag = state.nextTag;
    this.rounds = state.rounds;
    this.seq = state.seq;
    this.scheduled = this.scheduled.filter((x) => x.at >= this.now);
    // The DMA trace flag is the test's, not the snapshot's.
    this.dmaTraceOn = !this.dmaTraceOn;
    this.refresh();
    if (this.stateSnapshot) this.stateSnapshot = this.readStates();
  }

  /** Close file backends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.testbed.close();
  }
}

/** An event before the testbed stamps its time and sequence number. */
type NewEvent = TestbedEvent extends infer E ? (E extends TestbedEvent ? Omit<E, "t" | "seq"> : never) : never;

const SQ_STATES = ["NONE", "ACTIVE", "WAIT_CQ"]; // as SqState in assembly/nvme/queue.ts

/** The trace of a testbed: start/stop recording, filter, export. */
export class TraceControl {
  private tracer: Tracer | undefined;
  constructor(private readonly tb: DpuTestbed) {}
  /** Start recording (again: a new, empty trace). */
  start(o: TracerOptions = {}): void { this.tracer = new Tracer(o); this.tb.refreshListeners(); }
  stop(): void { this.tracer = undefined; this.tb.refreshListeners(); }
  get recording(): boolean { return this.tracer !== undefined; }
  /** @internal */
  wants(kind: EventKind): boolean { return this.tracer?.wants(kind) ?? false; }
  /** @internal */
  record(e: TestbedEvent): void { this.tracer?.record(e); }
  /** Recorded events passing the filter. */
  events(f: TraceFilter = {}): TestbedEvent[] { return this.tracer?.filter(f) ?? []; }
  /** Events not recorded because the trace hit its limit. */
  get dropped(): number { return this.tracer?.dropped ?? 0; }
  clear(): void { this.tracer?.clear(); }
  toJsonLines(f: TraceFilter = {}): string { return this.tracer?.toJsonLines(f) ?? ""; }
  /** Chrome trace format: JSON.stringify it to a file and open it in chrome://tracing or ui.perfetto.dev. */
  toChromeTrace(f: TraceFilter = {}): { traceEvents: object[]; displayTimeUnit: "ns" } {
    const idx = new Map(this.tb.vms.map((v) => [v.name, v.index]));
    return (this.tracer ?? new Tracer()).toChromeTrace(this.tracer ? f : { kinds: [] }, (vm) => idx.get(vm) ?? 0);
  }
}
export { matches as traceMatches };

/** A scenario: a built-in name, a JSON file path, a scenario object (validated) or an already parsed Scenario. */
export type ScenarioInput = string | Scenario | Record<string, unknown>;

async function resolveScenario(s: ScenarioInput, o: Overrides): Promise<Scenario> {
  if (typeof s === "string") return loadScenario(s, o);
  return parseScenario(structuredClone(s), o);
}

/** Build a testbed from a scenario (a built-in name such as "local", a file, or an object). */
export async function createTestbed(scenario: ScenarioInput, opts: CreateOptions = {}): Promise<DpuTestbed> {
  const overrides: Overrides = {};
  if (opts.seed !== undefined) overrides.seed = opts.seed;
  if (opts.number_ios !== undefined) overrides.number_ios = opts.number_ios;
  if (opts.runtime !== undefined) overrides.runtime = opts.runtime;
  const sc = await resolveScenario(scenario, overrides);
  return build(sc, { workload: opts.workload ?? false, hostBackends: opts.hostBackends ?? false }, opts);
}

async function build(sc: Scenario, b: { workload: boolean; hostBackends: boolean }, opts: CreateOptions): Promise<DpuTestbed> {
  // Host-served disks go through FaultyBackend so backend faults can be armed; with
  // hostBackends, memory disks become host-served memory backends.
  const faulty: (FaultyBackend | undefined)[] = [];
  let tbRef: DpuTestbed | undefined;
  const fire = (i: number) => (op: string, lba: number) => tbRef?.backendFault(i, op, lba);
  const fileOpen: FileOpener | undefined = opts.openFile;
  const run: Scenario = b.hostBackends
    ? { ...sc, vms: sc.vms.map((vm) => (vm.disk.backend === "memory" ? { ...vm, disk: { ...vm.disk, backend: "file", path: `${MEMORY_PATH}${vm.name}` } } : vm)) }
    : sc;
  const opener: FileOpener = async (path, bytes, blockSize) => {
    const i = run.vms.findIndex((v) => v.disk.path === path);
    const inner = path.startsWith(MEMORY_PATH) ? new MemoryBackend(new Uint8Array(bytes), blockSize)
      : await (fileOpen ?? defaultOpener())(path, bytes, blockSize);
    const f = new FaultyBackend(inner, (op, lba) => fire(i)(op, lba));
    faulty[i] = f;
    return f;
  };
  if (opts.pcap && !sc.target) throw new TestbedError(`createTestbed: pcap given, but scenario "${sc.name}" has no remote disks, so no frame would cross a fabric`);
  let tb: Testbed;
  try {
    tb = await Testbed.create(run, { openFile: opener, module: opts.module, pcap: opts.pcap });
  } catch (e) {
    throw new TestbedError(`createTestbed: ${(e as Error).message}`);
  }
  // The testbed keeps the scenario as given, so snapshots and restore compare like with like.
  (tb as unknown as { scenario: Scenario }).scenario = sc;
  const api = new DpuTestbed(tb, b, faulty);
  tbRef = api;
  if (opts.trace) api.trace.start(opts.trace === true ? {} : opts.trace);
  return api;
}

const MEMORY_PATH = "memory:"; // a host-served memory disk (hostBackends)

let nodeOpener: FileOpener | undefined;
/** @internal host/index.ts sets the Node file opener here too. */
export function setApiFileOpener(open: FileOpener): void { nodeOpener = open; }
function defaultOpener(): FileOpener {
  if (!nodeOpener) throw new TestbedError("createTestbed: a file disk needs the Node library entry (import from \"wasm-dpu\")");
  return nodeOpener;
}

/**
 * Build a new testbed in a snapshot's state (in Node, restoreTestbedFile reads one from a
 * file). `workload` overrides the snapshot's: true resumes the scenario's jobs from there.
 */
export async function restoreTestbed(s: Snapshot, opts: Pick<CreateOptions, "module" | "trace" | "openFile" | "workload"> = {}): Promise<DpuTestbed> {
  if (s.format !== SNAPSHOT_FORMAT) throw new TestbedError("restoreTestbed: not a wasm-dpu snapshot");
  const tb = await build(s.scenario, { ...s.build, workload: opts.workload ?? s.build.workload }, opts);
  tb.restore(s);
  return tb;
}

export { BlkOp, BUILTIN_SCENARIOS };
