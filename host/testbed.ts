// The testbed: one DPU card built from a scenario, a PCIe function and a guest driver
// per VM, a fio-like job per driver, and the run loop that drives them on the virtual
// clock:
//
//   jobs submit + kick  →  card.poll(budget)  →  clock += cost of that poll (host/timing.ts)
//   →  jobs reap (completion k of the poll is stamped k request-costs after the poll's
//      fixed cost)  →  until every job is done.
//
// One poll per round: the JS↔WASM boundary is crossed per batch (DESIGN rule 2).
import { Card, type DiskConfig } from "./card.js";
import type { GuestRam } from "./guest/ram.js";
import type { BlockDriver } from "./guest/driver.js";
import type { BlockBackend } from "./backends/types.js";
import { Job, type JobResult } from "./workload/job.js";
import { VirtualClock, DEFAULT_COST, type CostModel } from "./timing.js";
import type { DeviceKind, Scenario, VmSpec } from "./scenario.js";
import { attachNvme } from "./guest/nvme.js";
import { VirtioBlkPci } from "./pcie/virtio-pci.js";
import { VirtioBlkDriver } from "./guest/virtio-blk.js";
import { MemoryBackend } from "./backends/memory.js";
import { RemoteStorage, type RemoteDisk, type TargetReport } from "./remote.js";
import type { PcapWriter } from "./fabric/pcap.js";

/** What a device model gets to bring one VM's device up. */
export interface AttachContext {
  card: Card;
  /** Index of the VM's guest RAM and of its disk on the card. */
  guestIndex: number;
  disk: number;
  guest: GuestRam;
  vm: VmSpec;
}

/** Adds the VM's PCIe function to the card, brings the device up and returns its guest driver, ready for IO. */
export type DeviceFactory = (ctx: AttachContext) => BlockDriver | Promise<BlockDriver>;

export interface DeviceModel {
  attach: DeviceFactory;
}

/** virtio-blk: the driver negotiates packed/MQ as the VM asks. */
const VIRTIO_BLK: DeviceModel = {
  attach(ctx) {
    const { vm, card } = ctx;
    const dev = new VirtioBlkPci(card, { guest: ctx.guestIndex, disk: ctx.disk, queues: vm.queues, queueSize: vm.queue_size });
    const drv = new VirtioBlkDriver(dev, ctx.guest, { packed: vm.packed, queues: vm.queues, queueSize: vm.queue_size });
    if (vm.polling) for (let q = 0; q < vm.queues; q++) card.setPolling(dev.func, q, true);
    return drv;
  },
};

/** NVMe: admin queue + vm.queues I/O queue pairs. */
const NVME: DeviceModel = { attach: attachNvme };


export interface TestbedOptions {
  /** Device models by kind; defaults to the built-in virtio-blk and NVMe models. */
  devices?: Partial<Record<DeviceKind, DeviceModel>>;
  /** Overrides the scenario's cost model. */
  cost?: CostModel;
  /** Opens a file disk (default: the one set with setFileOpener; host/index.ts sets the Node one). */
  openFile?: FileOpener;
  /** A compiled firmware module (default: loadFirmware()). */
  module?: WebAssembly.Module;
  /** Every frame that crosses the fabric (scenarios with remote disks). */
  pcap?: PcapWriter;
}

export interface Progress {
  /** 0..1: the slowest job's share of its IO count or runtime. */
  fraction: number;
  completed: number;
  virtualNs: number;
}

export interface RunOptions {
  onProgress?: (p: Progress) => void;
  /** Rounds between two progress calls (deterministic, not timed). */
  progressEvery?: number;
  /** Rounds without any completion before the run is declared stalled. */
  stallRounds?: number;
}

export interface VmResult extends JobResult {
  vm: string;
  device: DeviceKind;
}

export interface RunResult {
  scenario: string;
  seed: number;
  jobs: VmResult[];
  firmware: { variant: "debug" | "release"; counters: Record<string, number>; errors: Record<string, number> };
  /** Virtual time the run took (ns) and the polls it made. */
  virtualNs: number;
  polls: number;
  /** The cost model the virtual clock ran on. */
  cost: CostModel;
  /** Wall-clock time of the run loop (ns): not deterministic. */
  wallNs: number;
  /** True when IOs stopped completing; the in-flight IOs count as errors. */
  stalled: boolean;
  /** The storage target, link and NIC, when disks are remote (transport "rdma"). */
  target?: TargetReport;
}

const DEFAULT_STALL_ROUNDS = 100_000;
const DEFAULT_PROGRESS_EVERY = 128; // rounds: a few thousand IOs, so a bar moves smoothly

export type FileOpener = (path: string, bytes: number, blockSize: number) => BlockBackend | Promise<BlockBackend>;
// The testbed itself stays free of node:fs so that browsers can bundle it.
let fileOpener: FileOpener | undefined;
/** Set how file disks are opened when TestbedOptions.openFile is not given. */
export function setFileOpener(open: FileOpener): void {
  fileOpener = open;
}

let builtinDevices: Partial<Record<DeviceKind, DeviceModel>> = { "virtio-blk": VIRTIO_BLK, nvme: NVME };
/** Replace the device model used when TestbedOptions.devices leaves a kind out. */
export function registerDevice(kind: DeviceKind, model: DeviceModel): void {
  builtinDevices = { ...builtinDevices, [kind]: model };
}

export class Testbed {
  private constructor(
    readonly scenario: Scenario,
    readonly card: Card,
    readonly drivers: BlockDriver[],
    readonly jobs: Job[],
    /** The virtual clock's cost model and DMA/host-IO accounting. */
    readonly clock: VirtualClock,
    private readonly backends: BlockBackend[],
    /** The storage target and the fabric, when some disk has transport "rdma". */
    readonly remote?: RemoteStorage,
  ) {}

  static async create(scenario: Scenario, opts: TestbedOptions = {}): Promise<Testbed> {
    const backends: BlockBackend[] = [];
    try {
      const disks: DiskConfig[] = [];
      const remoteDisks: RemoteDisk[] = [];
      for (const [i, vm] of scenario.vms.entries()) {
        const backend = await openBackend(vm, opts, backends);
        if (vm.disk.transport === "rdma") {
          disks.push({ kind: "nvmeof", blockSize: vm.disk.block_size, blocks: vm.disk.size / vm.disk.block_size });
          remoteDisks.push({ disk: i, guest: i, backend: backend ?? new MemoryBackend(new Uint8Array(vm.disk.size), vm.disk.block_size) });
        } else disks.push(backend ? { kind: "host", backend } : { kind: "memory", bytes: vm.disk.size, blockSize: vm.disk.block_size });
      }
      const card = await Card.create({ guests: scenario.vms.map((vm) => ({ ramBytes: vm.ram })), disks }, opts.module);
      const remote = remoteDisks.length === 0 ? undefined
        : await RemoteStorage.create(card, remoteDisks, { fabric: scenario.fabric!, target: scenario.target!, events: scenario.events, seed: scenario.seed, pcap: opts.pcap, module: opts.module });
      const drivers: BlockDriver[] = [];
      for (const [i, vm] of scenario.vms.entries()) {
        const model = opts.devices?.[vm.device] ?? builtinDevices[vm.device];
        if (!model) throw new Error(`testbed: no device model for "${vm.device}"`);
        // Functions are numbered in the order they are added: VM i is function i.
        drivers.push(await model.attach({ card, guestIndex: i, disk: i, guest: card.guests[i]!, vm }));
      }
      // Memory disks and newly created files read as zeros; an existing image may not.
      const zeroed = scenario.vms.map((vm, i) => {
        const d = vm.disk.transport === "rdma" ? remoteDisks.find((r) => r.disk === i)!.backend : card.disks[i]!;
        return !("created" in d) || d.created === true;
      });
      const jobs = scenario.vms.map((vm, i) => new Job(drivers[i]!, card.guests[i]!, { name: vm.name, ...vm.job, zeroed: zeroed[i] }));
      return new Testbed(scenario, card, drivers, jobs, new VirtualClock(card.memory, opts.cost ?? scenario.timing ?? DEFAULT_COST), backends, remote);
    } catch (e) {
      for (const b of backends) b.close();
      throw e;
    }
  }

  /** Run every job to its end. */
  run(opts: RunOptions = {}): RunResult {
    const { card, jobs, clock } = this;
    const budget = this.scenario.poll_budget;
    const pollNs = clock.model.pollNs;
    let polls = 0;
    const round = (): number => {
      for (const j of jobs) if (!j.done) j.submit(card.now);
      const start = card.now;
      const taken = this.poll(budget);
      const cost = clock.charge(taken);
      polls++;
      card.now = start + cost;
      const step = taken > 0 ? (cost - pollNs) / taken : 0;
      let reaped = 0;
      for (const j of jobs) reaped += j.reap(start + pollNs + reaped * step, step, card.now);
      return reaped;
    };
    return this.runLoop(round, opts, card.now, () => polls);
  }

  /** One batch of the DPU (card.poll), then the storage target's round when disks are remote. Returns requests taken. */
  poll(budget: number): number {
    const n = this.card.poll(budget);
    this.remote?.step(this.card.now);
    return n;
  }

  /**
   * The run loop, shared with the testbed API (whose rounds also fire faults and hooks):
   * `round()` returns the IOs it reaped; it runs until every job is done, or until no IO
   * completed for stallRounds rounds. Virtual time is counted from t0.
   */
  runLoop(round: () => number, opts: RunOptions, t0: number, polls: () => number): RunResult {
    const { card, jobs } = this;
    const every = opts.progressEvery ?? DEFAULT_PROGRESS_EVERY;
    const stallRounds = opts.stallRounds ?? DEFAULT_STALL_ROUNDS;
    const wall0 = performance.now();
    let rounds = 0;
    let idle = 0;
    let stalled = false;
    while (!jobs.every((j) => j.done)) {
      idle = round() === 0 ? idle + 1 : 0;
      rounds++;
      if (idle >= stallRounds) { stalled = true; break; }
      if (opts.onProgress && rounds % every === 0) opts.onProgress(this.progress(t0));
    }
    const wallNs = Math.round((performance.now() - wall0) * 1e6);
    opts.onProgress?.(this.progress(t0));
    return {
      scenario: this.scenario.name,
      seed: this.scenario.seed,
      jobs: jobs.map((j, i) => {
        const r = j.result();
        const vm = this.scenario.vms[i]!;
        // IOs still in flight when the run stalled never completed: count them as failed.
        if (stalled) r.errors += j.inflight;
        return { ...r, vm: vm.name, device: vm.device };
      }),
      firmware: { variant: card.firmwareVariant, counters: card.counters(), errors: card.errors() },
      virtualNs: card.now - t0,
      polls: polls(),
      cost: { ...this.clock.model },
      wallNs,
      stalled,
      ...(this.remote ? { target: this.remote.report() } : {}),
    };
  }

  private progress(t0: number): Progress {
    let fraction = 1;
    let completed = 0;
    for (const j of this.jobs) {
      const p = j.progress();
      completed += p.completed;
      const rt = j.options.runtime;
      const f = p.target !== Infinity ? p.completed / p.target : rt ? (this.card.now - t0) / rt : 1;
      fraction = Math.min(fraction, j.done ? 1 : f);
    }
    return { fraction: Math.min(1, fraction), completed, virtualNs: this.card.now - t0 };
  }

  /** Close the file backends. */
  close(): void {
    for (const b of this.backends) b.close();
  }
}

/** The VM's file backend, opened; null for a memory disk (the card or the target holds it). */
async function openBackend(vm: VmSpec, opts: TestbedOptions, opened: BlockBackend[]): Promise<BlockBackend | null> {
  const d = vm.disk;
  if (d.backend === "memory") return null;
  const open = opts.openFile ?? fileOpener;
  if (!open) throw new Error(`testbed: VM ${vm.name} wants a file disk, and no file opener is set here (Node: import the library from host/index.ts)`);
  const b = await open(d.path!, d.size, d.block_size);
  opened.push(b);
  return b;
}

/** Build a testbed for the scenario, run it, close it. */
export async function runScenario(scenario: Scenario, opts: TestbedOptions & RunOptions = {}): Promise<RunResult> {
  const tb = await Testbed.create(scenario, opts);
  try {
    return tb.run(opts);
  } finally {
    tb.close();
  }
}
