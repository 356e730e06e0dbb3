// IO stall at a controller failover, on the virtual clock: the built-in `failover` scenario
// (2 VMs, mixed verified load, controller A's link cut at 3 ms and back at 7 ms) with the
// storage-side NIC's shared connectors, beside the baseline in which the lost controller's
// queue pairs are torn down and the DPU reconnects through RDMA-CM and resubmits.
// Virtual-clock figures are deterministic: one run of each.
import { Testbed } from "../testbed.js";
import { loadScenario, type Scenario } from "../scenario.js";
import { Histogram } from "../workload/histogram.js";
import type { BenchOptions, Figure } from "./harness.js";
import "../index.js";

export interface Stall { p99: number; max: number; errors: number }

/** Latency p99 and maximum over every IO of the run (virtual ns), and the IO errors. */
export async function failoverStall(mode: "connectors" | "reconnect", ios?: number): Promise<Stall> {
  const base = await loadScenario("failover", ios ? { number_ios: ios } : {});
  const sc: Scenario = { ...base, target: { ...base.target!, mode } };
  const tb = await Testbed.create(sc);
  try {
    const r = tb.run();
    const h = new Histogram();
    for (const j of r.jobs) { h.merge(j.read.lat); h.merge(j.write.lat); }
    return { p99: h.percentile(99), max: h.max, errors: r.jobs.reduce((a, j) => a + j.errors + j.verifyErrors, 0) + (r.stalled ? 1 : 0) };
  } finally {
    tb.close();
  }
}

export async function benchFailoverStall(o: BenchOptions): Promise<Figure> {
  const ios = o.samples > 1 ? undefined : 10_000;
  const c = await failoverStall("connectors", ios), b = await failoverStall("reconnect", ios);
  if (c.errors || b.errors) throw new Error(`bench: failover runs had errors (connectors ${c.errors}, reconnect ${b.errors})`);
  const us = (x: number) => (x / 1000).toFixed(1);
  return {
    name: `IO stall at failover, max latency on the virtual clock, shared connectors vs reconnect (p99 ${us(c.p99)} µs vs ${us(b.p99)} µs)`,
    unit: "ns", value: c.max, reference: { name: "baseline: QPs torn down, DPU reconnects and resubmits", value: b.max }, ratio: c.max / b.max, samples: 1,
  };
}
