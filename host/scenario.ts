// Scenario files: what to emulate (one DPU, its VMs, their devices and disks) and
// what to run on it (one fio-like job per VM). Validated with zod; every problem
// becomes ONE message naming the field path, e.g.
//   scenario.vms[1].disk.block_size: must be 512 or 4096
// Sizes accept "4k", "64M", "1G"; durations "5ms", "2s" (host/workload/units.ts).
//
// {
//   "name": "local", "seed": 1, "poll_budget": 256,
//   "timing": { "poll_ns": 250, "request_ns": 120, "pcie_gb_per_s": 15.75, "host_io_ns": 8000 },
//   "job": { ...defaults for every VM's job... },
//   "vms": [ { "name": "vm0", "ram": "64M", "device": "virtio-blk", "queues": 1, "queue_size": 128,
//              "packed": false, "polling": false,
//              "disk": { "backend": "memory", "size": "64M", "block_size": 4096 },
//              "job": { "rw": "randrw", "rwmixread": 50, "bs": "4k", "iodepth": 32,
//                       "number_ios": 100000, "runtime": "2s", "verify": true } } ]
// }
//
// A disk with "transport": "rdma" is not on the DPU: it is a namespace of the storage
// target, reached as NVMe-oF over RDMA (RoCEv2) across the fabric; the scenario then
// needs "target" (the storage-side NIC and its controllers) and may set "fabric":
//   "fabric": { "gbps": 100, "latency": "1us", "loss": 0.01, "reorder": 0.01, "duplicate": 0.01, "mtu": 4096 },
//   "target": { "controllers": 2, "fast_path": true, "protection": false }
import { z } from "zod";
import { MAX_GUESTS, MAX_QUEUES, NIC_MAX_CTRLS, NVMF_MAX_QUEUES } from "../assembly/memmap.js";
import { NVME_MQES } from "../assembly/nvme/regs.js";
import { layoutCard } from "./layout.js";
import { parseDuration, parseSize } from "./workload/units.js";
import { RW_MODES } from "./workload/job.js";
import { DEFAULT_COST, type CostModel } from "./timing.js";

export const DEVICES = ["virtio-blk", "nvme"] as const;
export type DeviceKind = (typeof DEVICES)[number];

/** A scenario that cannot run; the message is the whole story (field path: problem). */
export class ScenarioError extends Error {
  override name = "ScenarioError";
}

// ---- limits from the specs ----
/** virtio 1.2 §2.7 (split) and §2.8 (packed): Queue Size is at most 32768. */
const VIRTIO_MAX_QUEUE_SIZE = 32768;
/** NVMe base 2.0 §3.3.1: an I/O queue holds 2..65536 entries (CAP.MQES caps it further). */
const NVME_MIN_QUEUE_SIZE = 2;
const NVME_MAX_QUEUE_SIZE = 65536;
/** Guest RAM the drivers need beyond rings and data buffers (headers, PRP lists, page 0). */
const DRIVER_RAM_SLACK = 256 * 1024;
const PAGE_4K = 4096;

const size = z.union([z.string(), z.number()], { error: `must be a size such as 4096, "4k" or "64M"` }).transform((v, ctx) => {
    try {
      const n = parseSize(v);
      if (n <= 0) throw new RangeError(`must be more than 0 bytes`);
      return n;
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  });

const duration = z.union([z.string(), z.number()], { error: `must be a duration such as "5ms" or "2s"` }).transform((v, ctx) => {
  try {
    const n = parseDuration(v);
    if (n <= 0) throw new RangeError("must be longer than 0");
    return n;
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

/** fio options; every field optional here, merged over the scenario's `job` defaults. */
const JobFields = z.strictObject({
  rw: z.enum(RW_MODES).optional(),
  rwmixread: int(0, 100).optional(),
  bs: size.optional(),
  iodepth: int(1, 65536).optional(),
  number_ios: int(1).optional(),
  runtime: duration.optional(),
  verify: z.boolean().optional(),
  size: size.optional(),
  seed: int(0, 0xffffffff).optional(),
});
type JobFieldsOut = z.output<typeof JobFields>;

/** Where a VM's disk is: on the DPU ("local") or a namespace of the storage target over NVMe-oF/RDMA ("rdma"). */
export const TRANSPORTS = ["local", "rdma"] as const;
export type Transport = (typeof TRANSPORTS)[number];

const Disk = z.strictObject({
  backend: z.enum(["memory", "file"]),
  transport: z.enum(TRANSPORTS).default("local"),
  path: z.string().min(1).optional(),
  size: size,
  block_size: z.union([z.literal(512), z.literal(4096)], { error: "must be 512 or 4096" }).default(4096),
});

const Vm = z.strictObject({
  name: z.string().min(1).regex(/^[\w.-]+$/, "must be letters, digits, '_', '.' or '-'"),
  ram: size.prefault("64M"),
  device: z.enum(DEVICES),
  queues: int(1, MAX_QUEUES - 1).default(1),
  queue_size: int(2, NVME_MAX_QUEUE_SIZE).default(128),
  packed: z.boolean().default(false),
  polling: z.boolean().default(false),
  disk: Disk,
  job: JobFields.prefault({}),
});

/** The virtual clock's cost model (host/timing.ts); defaults to DEFAULT_COST. */
const Timing = z.strictObject({
  poll_ns: z.number().min(0).default(DEFAULT_COST.pollNs),
  request_ns: z.number().min(0).default(DEFAULT_COST.requestNs),
  /** PCIe DMA bandwidth; GB/s is bytes per ns. */
  pcie_gb_per_s: z.number().positive().default(DEFAULT_COST.pcieBytesPerNs),
  host_io_ns: z.number().min(0).default(DEFAULT_COST.hostIoNs),
});

const probability = z.number().min(0).max(1);

/** A duration field ("5ms", 2000): ns, ≥ 0 when zero is allowed, else > 0. */
function durationField(zeroOk: boolean) {
  return (v: string | number, ctx: z.RefinementCtx): number => {
    try {
      const n = parseDuration(v);
      if (zeroOk ? n < 0 : n <= 0) throw new RangeError(zeroOk ? "must not be negative" : "must be longer than 0");
      return n;
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  };
}
/** IBTA vol. 1 §9.7.8 path MTUs. */
export const PATH_MTUS = [256, 512, 1024, 2048, 4096] as const;

/** The link between the DPU and the storage-side NIC (host/fabric/link.ts). */
const FabricSpecSchema = z.strictObject({
  gbps: z.number().positive().default(100),
  latency: z.union([z.string(), z.number()]).default("1us").transform(durationField(true)),
  loss: probability.default(0),
  reorder: probability.default(0),
  duplicate: probability.default(0),
  mtu: z.union([z.literal(256), z.literal(512), z.literal(1024), z.literal(2048), z.literal(4096)], { error: `must be one of ${PATH_MTUS.join(", ")}` }).default(4096),
});

/** Each remote disk is its own NVMe-oF association: an admin queue and one I/O queue. */
export const NVMF_QUEUES_PER_DISK = 2;

/** The storage target: the storage-side NIC and the controllers behind it (host/target/). */
const TargetSchema = z.strictObject({
  controllers: int(1, NIC_MAX_CTRLS).default(2),
  /** After a tail or single data packet the NIC sends the response before the next controller's queue. */
  fast_path: z.boolean().default(true),
  /** End-to-end protection: 8 bytes of PI per block, checked by the NIC on data it sends. */
  protection: z.boolean().default(false),
  /**
   * What losing a controller does: "connectors" — shared connectors move its QPs to another
   * controller and the host never notices; "reconnect" — the baseline: its QPs are torn down and
   * the DPU reconnects through RDMA-CM and resubmits.
   */
  mode: z.enum(["connectors", "reconnect"]).default("connectors"),
  /** A controller silent for this long is declared lost (missed heartbeat). */
  heartbeat: z.union([z.string(), z.number()]).default("100us").transform(durationField(false)),
});

/** Things that happen to the storage target on the virtual clock. */
export const TARGET_EVENTS = ["link-down", "link-up", "controller-crash", "controller-restart"] as const;
const EventSchema = z.strictObject({
  at: z.union([z.string(), z.number()]).transform(durationField(true)),
  event: z.enum(TARGET_EVENTS),
  /** "A", "B", ...: controller 0, 1, ... */
  controller: z.string().regex(/^[A-H]$/, "must be a controller letter, A to H"),
});

const ScenarioSchema = z.strictObject({
  name: z.string().min(1).default("scenario"),
  seed: int(0, 0xffffffff).default(1),
  poll_budget: int(1, 65536).default(256),
  timing: Timing.prefault({}),
  fabric: FabricSpecSchema.optional(),
  target: TargetSchema.optional(),
  events: z.array(EventSchema).default([]),
  job: JobFields.prefault({}),
  vms: z.array(Vm).min(1).max(MAX_GUESTS),
});

// ---- the normalized scenario the testbed runs ----
export interface JobSpec {
  rw: (typeof RW_MODES)[number];
  rwmixread: number;
  bs: number;
  iodepth: number;
  number_ios?: number;
  runtime?: number;
  verify: boolean;
  size?: number;
  seed: number;
}
export interface DiskSpec { backend: "memory" | "file"; transport: Transport; path?: string; size: number; block_size: 512 | 4096 }
export interface FabricSpec { gbps: number; latency: number; loss: number; reorder: number; duplicate: number; mtu: (typeof PATH_MTUS)[number] }
export interface TargetSpec { controllers: number; fast_path: boolean; protection: boolean; mode: "connectors" | "reconnect"; heartbeat: number }
export interface TargetEvent { at: number; event: (typeof TARGET_EVENTS)[number]; controller: string }
export interface VmSpec { name: string; ram: number; device: DeviceKind; queues: number; queue_size: number; packed: boolean; polling: boolean; disk: DiskSpec; job: JobSpec }
export interface Scenario {
  name: string; seed: number; poll_budget: number; timing: CostModel; vms: VmSpec[];
  /** Present when some disk has transport "rdma" (defaults filled in). */
  fabric?: FabricSpec;
  target?: TargetSpec;
  /** Events on the storage target, in time order (ties keep file order). */
  events: TargetEvent[];
}

/** Options the CLI lays over every job of a scenario. */
export interface Overrides { seed?: number; number_ios?: number; runtime?: number }

const JOB_DEFAULTS = { rw: "randrw", rwmixread: 50, bs: 4096, iodepth: 32, verify: false } as const;
/** When a job sets neither number_ios nor runtime. */
export const DEFAULT_NUMBER_IOS = 100_000;

/** Validate a parsed JSON value as a scenario; throws ScenarioError naming the field. */
export function parseScenario(input: unknown, overrides: Overrides = {}): Scenario {
  const r = ScenarioSchema.safeParse(input, { reportInput: true });
  if (!r.success) throw new ScenarioError(describeIssue(r.error.issues[0]!));
  const s = r.data;
  const seed = overrides.seed ?? s.seed;
  const vms = s.vms.map((vm, i): VmSpec => ({ ...vm, job: resolveJob(s.job, vm.job, seed, i, overrides) }));
  const t = s.timing;
  const timing: CostModel = { pollNs: t.poll_ns, requestNs: t.request_ns, pcieBytesPerNs: t.pcie_gb_per_s, hostIoNs: t.host_io_ns };
  const sc: Scenario = { name: s.name, seed, poll_budget: s.poll_budget, timing, vms, events: [] };
  const remote = vms.some((vm) => vm.disk.transport === "rdma");
  if (remote && !s.target) throw new ScenarioError(`scenario.target: required when a disk has transport "rdma" (the storage target it reaches)`);
  if (!remote && s.target) throw new ScenarioError(`scenario.target: no disk has transport "rdma", so nothing would use the target`);
  if (!remote && s.fabric) throw new ScenarioError(`scenario.fabric: no disk has transport "rdma", so no frame would cross the fabric`);
  const nRemote = vms.filter((vm) => vm.disk.transport === "rdma").length;
  const maxRemote = NVMF_MAX_QUEUES / NVMF_QUEUES_PER_DISK;
  if (nRemote > maxRemote) throw new ScenarioError(`scenario.vms: ${nRemote} disks with transport "rdma", at most ${maxRemote} (each takes an admin and an I/O queue of the DPU's ${NVMF_MAX_QUEUES} NVMe-oF queues)`);
  if (remote) {
    sc.target = s.target!;
    sc.fabric = s.fabric ?? FabricSpecSchema.parse({});
  }
  s.events.forEach((e, i) => {
    if (!sc.target) throw new ScenarioError(`scenario.events[${i}]: events happen to the storage target, and no disk has transport "rdma"`);
    const k = e.controller.charCodeAt(0) - 65;
    if (k >= sc.target.controllers) throw new ScenarioError(`scenario.events[${i}].controller: "${e.controller}" is not one of the target's ${sc.target.controllers} controllers (A to ${String.fromCharCode(64 + sc.target.controllers)})`);
  });
  sc.events = s.events.map((e, i) => ({ ...e, i })).sort((a, b) => a.at - b.at || a.i - b.i).map(({ i: _, ...e }) => e);
  checkCombinations(sc);
  return sc;
}

function resolveJob(defaults: JobFieldsOut, own: JobFieldsOut, seed: number, index: number, o: Overrides): JobSpec {
  const j = { ...JOB_DEFAULTS, ...strip(defaults), ...strip(own) };
  if (o.number_ios !== undefined || o.runtime !== undefined) {
    j.number_ios = o.number_ios;
    j.runtime = o.runtime;
  }
  if (j.number_ios === undefined && j.runtime === undefined) j.number_ios = DEFAULT_NUMBER_IOS;
  // Each VM's job draws from its own stream; an explicit per-job seed wins unless --seed is given.
  const jobSeed = o.seed === undefined && own.seed !== undefined ? own.seed : (seed + index * 0x9e3779b9) >>> 0;
  return { ...j, seed: jobSeed } as JobSpec;
}

function strip<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Per virtqueue entry, the guest driver keeps a request header/status slot and an indirect table. */
const VIRTIO_DRIVER_BYTES_PER_ENTRY = 64 + 4 * 16;
/** NVMe PRP entries per page (NVMe 2.0 §4.1.1): a transfer over two pages needs a PRP list page. */
const NVME_PRP_PAGES_INLINE = 2;

/** Guest RAM a VM's driver needs for its rings and per-request structures (estimate, page aligned). */
export function ringBytes(vm: Pick<VmSpec, "device" | "queues" | "queue_size" | "packed">, job?: Pick<JobSpec, "bs" | "iodepth">): number {
  const up = (n: number) => Math.ceil(n / PAGE_4K) * PAGE_4K;
  const q = vm.queue_size;
  let perQueue: number;
  if (vm.device === "nvme") perQueue = up(64 * q) + up(16 * q); // SQE 64 B, CQE 16 B (NVMe 2.0 §4.1)
  else if (vm.packed) perQueue = up(16 * q) + PAGE_4K; // packed descriptors + event structures (virtio 1.2 §2.8)
  else perQueue = up(16 * q) + up(6 + 2 * q) + up(6 + 8 * q); // desc, avail, used (virtio 1.2 §2.7)
  if (vm.device === "virtio-blk") perQueue += up(VIRTIO_DRIVER_BYTES_PER_ENTRY * q);
  const admin = vm.device === "nvme" ? 2 * PAGE_4K : 0;
  const prpLists = vm.device === "nvme" && job && job.bs > NVME_PRP_PAGES_INLINE * PAGE_4K ? job.iodepth * PAGE_4K : 0;
  return vm.queues * perQueue + admin + prpLists;
}

/**
 * Requests one queue can hold at once. A split virtqueue needs a descriptor for the
 * header, the data and the status of each request (virtio 1.2 §5.2.6) unless the driver
 * uses indirect descriptors; NVMe keeps one SQ slot empty (NVMe 2.0 §3.3.1.2).
 */
export function queueDepth(vm: Pick<VmSpec, "device" | "queue_size">): number {
  return vm.device === "nvme" ? vm.queue_size - 1 : vm.queue_size;
}

function checkCombinations(s: Scenario): void {
  try {
    layoutCard(s.vms.map((vm) => (vm.disk.backend === "memory" && vm.disk.transport === "local" ? vm.disk.size : null)), s.vms.map((vm) => vm.ram));
  } catch (e) {
    throw new ScenarioError(`scenario.vms: ${(e as Error).message.replace(/^card memory: /, "")}`);
  }
  const names = new Set<string>();
  s.vms.forEach((vm, i) => {
    const at = `scenario.vms[${i}]`;
    const fail = (field: string, msg: string): never => { throw new ScenarioError(`${at}${field}: ${msg}`); };
    if (names.has(vm.name)) fail(".name", `"${vm.name}" is used by another VM`);
    names.add(vm.name);
    const d = vm.disk;
    if (d.backend === "file" && !d.path) fail(".disk.path", "required for the file backend");
    if (d.backend === "memory" && d.path) fail(".disk.path", "only for the file backend");
    if (d.size % d.block_size !== 0) fail(".disk.size", `${d.size} bytes is not a multiple of the ${d.block_size}-byte block size`);
    if (vm.device === "nvme") {
      if (vm.packed) fail(".packed", "only for virtio-blk (NVMe queues have no packed layout)");
      if (vm.queue_size < NVME_MIN_QUEUE_SIZE) fail(".queue_size", `must be at least ${NVME_MIN_QUEUE_SIZE} for NVMe`);
      if (vm.queue_size > NVME_MQES + 1) fail(".queue_size", `must be at most ${NVME_MQES + 1}, what this NVMe controller's CAP.MQES allows (NVMe 2.0 §3.1.4.1)`);
    } else {
      if (vm.queue_size > VIRTIO_MAX_QUEUE_SIZE) fail(".queue_size", `must be at most ${VIRTIO_MAX_QUEUE_SIZE} for virtio (virtio 1.2 §2.7)`);
      if (!vm.packed && (vm.queue_size & (vm.queue_size - 1)) !== 0) fail(".queue_size", `${vm.queue_size} is not a power of two, which a split virtqueue needs (virtio 1.2 §2.7)`);
    }
    const j = vm.job;
    if (j.bs % d.block_size !== 0) fail(".job.bs", `${j.bs} is not a multiple of the disk's ${d.block_size}-byte block size`);
    const area = j.size ?? d.size;
    if (area > d.size) fail(".job.size", `${area} bytes is more than the ${d.size}-byte disk`);
    if (j.bs > area) fail(".job.bs", `${j.bs} bytes is more than the ${area}-byte disk area`);
    if (Math.floor(area / j.bs) < j.iodepth) fail(".job.iodepth", `${j.iodepth} IOs of ${j.bs} bytes do not fit apart in ${area} bytes of disk`);
    const depth = queueDepth(vm) * vm.queues;
    if (j.iodepth > depth) fail(".job.iodepth", `${j.iodepth} is more than the ${vm.queues} queue(s) of ${vm.queue_size} entries can hold (${depth})`);
    const need = ringBytes(vm, j) + j.iodepth * Math.ceil(j.bs / PAGE_4K) * PAGE_4K + DRIVER_RAM_SLACK;
    if (vm.ram < need) fail(".ram", `${vm.ram} bytes is too small: rings and ${j.iodepth} × ${j.bs}-byte buffers need about ${need}`);
  });
}

/** One line for the first problem zod found: `scenario.a.b[2]: problem`. */
function describeIssue(issue: z.core.$ZodIssue): string {
  let path = issue.path;
  let msg: string;
  switch (issue.code) {
    case "unrecognized_keys":
      msg = `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
      break;
    case "invalid_type":
      if (issue.input === undefined) msg = "required";
      else if (issue.expected === "int") msg = "must be a whole number";
      else msg = `must be ${article(issue.expected)}, not ${typeName(issue.input)}`;
      break;
    case "invalid_value":
      msg = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
      break;
    case "too_small":
      msg = issue.origin === "array" ? `needs at least ${issue.minimum} entr${issue.minimum === 1 ? "y" : "ies"}` : issue.origin === "string" ? "must not be empty" : `must be ${issue.inclusive === false ? "more than" : "at least"} ${issue.minimum}`;
      break;
    case "too_big":
      msg = issue.origin === "array" ? `has more than ${issue.maximum} entries` : `must be ${issue.inclusive === false ? "less than" : "at most"} ${issue.maximum}`;
      break;
    default:
      msg = issue.message;
  }
  path = path.filter((p) => typeof p !== "symbol");
  return `${formatPath(path as (string | number)[])}: ${msg}`;
}

function formatPath(path: (string | number)[]): string {
  return "scenario" + path.map((p) => (typeof p === "number" ? `[${p}]` : /^[A-Za-z_]\w*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join("");
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return article(typeof v);
}

function article(t: string): string {
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

// ---- built-in scenarios and loading ----

/** Two VMs on one DPU: one virtio-blk, one NVMe, each on its own 64 MiB memory disk. */
const LOCAL = {
  name: "local",
  seed: 1,
  poll_budget: 256,
  job: { rw: "randrw", rwmixread: 50, bs: "4k", iodepth: 32, verify: true, number_ios: 250_000 },
  vms: [
    { name: "vm0-virtio", ram: "32M", device: "virtio-blk", queues: 1, queue_size: 128, disk: { backend: "memory", size: "64M", block_size: 4096 } },
    { name: "vm1-nvme", ram: "32M", device: "nvme", queues: 1, queue_size: 128, disk: { backend: "memory", size: "64M", block_size: 4096 } },
  ],
};

/**
 * The same two VMs, their disks behind the storage target: DPU → NVMe-oF over RoCEv2 → fabric
 * (1% loss, reorder and duplication) → storage-side NIC → 2 storage controllers → memory backends.
 */
const RDMA = {
  name: "rdma",
  seed: 1,
  poll_budget: 256,
  job: { rw: "randrw", rwmixread: 50, bs: "4k", iodepth: 32, verify: true, number_ios: 20_000 },
  fabric: { gbps: 100, latency: "1us", loss: 0.01, reorder: 0.01, duplicate: 0.01, mtu: 4096 },
  target: { controllers: 2, fast_path: true, protection: false },
  vms: [
    { name: "vm0-virtio", ram: "32M", device: "virtio-blk", queues: 1, queue_size: 128, disk: { backend: "memory", transport: "rdma", size: "64M", block_size: 4096 } },
    { name: "vm1-nvme", ram: "32M", device: "nvme", queues: 1, queue_size: 128, disk: { backend: "memory", transport: "rdma", size: "64M", block_size: 4096 } },
  ],
};

/**
 * The rdma scenario's VMs with a mixed load, verified, while controller A's link is cut
 * (at 3 ms of the run) and comes back (at 7 ms): the shared connectors move A's queue pairs
 * to B and back, and the VMs see no error.
 */
const FAILOVER = {
  name: "failover",
  seed: 1,
  poll_budget: 256,
  job: { rw: "randrw", rwmixread: 50, bs: "4k", iodepth: 32, verify: true, number_ios: 20_000 },
  fabric: { gbps: 100, latency: "1us", mtu: 4096 },
  target: { controllers: 2, fast_path: true, protection: false, mode: "connectors" },
  events: [
    { at: "3ms", event: "link-down", controller: "A" },
    { at: "7ms", event: "link-up", controller: "A" },
  ],
  vms: RDMA.vms,
};

export const BUILTIN_SCENARIOS: Record<string, unknown> = { local: LOCAL, rdma: RDMA, failover: FAILOVER };
export const DEFAULT_SCENARIO = "local";

/** Read a scenario: a built-in name or a JSON file path. Throws ScenarioError. */
export async function loadScenario(nameOrPath: string = DEFAULT_SCENARIO, overrides: Overrides = {}): Promise<Scenario> {
  const builtin = BUILTIN_SCENARIOS[nameOrPath];
  if (builtin !== undefined) return parseScenario(structuredClone(builtin), overrides);
  const fsModule = "node:fs/promises"; // a variable, so browser bundlers leave it alone
  const { readFile } = (await import(/* @vite-ignore */ fsModule)) as typeof import("node:fs/promises");
  let text: string;
  try {
    text = await readFile(nameOrPath, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const known = Object.keys(BUILTIN_SCENARIOS).join(", ");
    throw new ScenarioError(`scenario ${nameOrPath}: ${code === "ENOENT" ? `no such file, and not a built-in scenario (${known})` : `cannot read (${code ?? (e as Error).message})`}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError(`scenario ${nameOrPath}: not valid JSON (${(e as Error).message})`);
  }
  return parseScenario(json, overrides);
}
