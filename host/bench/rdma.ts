// The NVMe-oF over RDMA path end to end: VMs → DPU (NVMe-oF host in firmware) → RoCEv2 frames
// with ICRC → fabric → storage-side NIC (second firmware instance) → storage controllers →
// memory backends, and back; both cards and the controllers on this one core.
//
//   e2e-rdma      4 KiB randread, iodepth 32 per VM, 2 VMs, verify off: IOs per wall second,
//                 beside the same VMs on local RAM disks in the same run (the DPU alone).
//   rdma-latency  read latency on the virtual clock with 4 busy controllers (4 VMs, one I/O
//                 queue each, each queue on its own controller), tail fast path on vs off.
import { Testbed } from "../testbed.js";
import { parseScenario } from "../scenario.js";
import { median, type BenchOptions, type Figure } from "./harness.js";
import { Histogram } from "../workload/histogram.js";
import "../index.js";

const BS = 4096, DISK = "32M";

function scenario(vms: number, transport: "rdma" | "local", ios: number, opts: { fastPath?: boolean; rw?: string } = {}) {
  return parseScenario({
    name: `bench-${transport}`, seed: 1,
    ...(transport === "rdma" ? { fabric: { mtu: 4096 }, target: { controllers: Math.min(vms, 4), fast_path: opts.fastPath ?? true } } : {}),
    job: { rw: opts.rw ?? "randread", bs: BS, iodepth: 32, verify: false, number_ios: ios },
    vms: Array.from({ length: vms }, (_, i) => ({
      name: `vm${i}`, device: "nvme", ram: "16M", disk: { backend: "memory", transport, size: DISK, block_size: BS },
    })),
  });
}

/** IOs per wall second of one run (setup not timed: the testbed times its run loop). */
async function iops(transport: "rdma" | "local", ios: number): Promise<number> {
  const tb = await Testbed.create(scenario(2, transport, ios));
  try {
    const r = tb.run();
    const errors = r.jobs.reduce((a, j) => a + j.errors, 0);
    if (errors !== 0 || r.stalled) throw new Error(`bench: ${transport} run had ${errors} IO errors${r.stalled ? " and stalled" : ""}`);
    return (2 * ios) / (r.wallNs / 1e9);
  } finally {
    tb.close();
  }
}

export async function benchRdmaEndToEnd(o: BenchOptions): Promise<Figure> {
  const ios = o.samples > 1 ? 100_000 : 5_000;
  await iops("rdma", ios / 4); // warm up
  await iops("local", ios / 4);
  const a: number[] = [], b: number[] = [];
  for (let i = 0; i < o.samples; i++) { a.push(await iops("rdma", ios)); b.push(await iops("local", ios)); }
  const value = median(a), ref = median(b);
  return {
    name: "end-to-end rdma path (2 VMs, NVMe-oF over RoCEv2 with ICRC, 4 KiB randread, iodepth 32, verify off, MTU 4096)",
    unit: "IOPS", value, reference: { name: "the same 2 VMs on local RAM disks", value: ref }, ratio: value / ref, samples: o.samples,
  };
}

/** p50 and p99 read latency (virtual ns) of 4 VMs on 4 controllers. */
async function latency(fastPath: boolean, ios: number): Promise<{ p50: number; p99: number }> {
  const tb = await Testbed.create(scenario(4, "rdma", ios, { fastPath, rw: "randrw" }));
  try {
    const r = tb.run();
    if (r.jobs.some((j) => j.errors !== 0) || r.stalled) throw new Error("bench: rdma latency run had IO errors");
    const h = new Histogram();
    for (const j of r.jobs) h.merge(j.read.lat);
    return { p50: h.percentile(50), p99: h.percentile(99) };
  } finally {
    tb.close();
  }
}

/** Virtual-clock figures are deterministic: one run each; the figure is p99 with the fast path, beside p99 without. */
export async function benchRdmaLatency(o: BenchOptions): Promise<Figure> {
  const ios = o.samples > 1 ? 20_000 : 2_000;
  const on = await latency(true, ios), off = await latency(false, ios);
  const us = (x: number) => (x / 1000).toFixed(2);
  return {
    name: `rdma read latency p99, 4 busy controllers, tail fast path on vs off (virtual clock; p50 ${us(on.p50)} µs on, ${us(off.p50)} µs off)`,
    unit: "ns", value: on.p99, reference: { name: "fast path off", value: off.p99 }, ratio: on.p99 / off.p99, samples: 1,
  };
}
