// What a run prints: a JSON object shaped like fio's --output-format=json, and a short
// human summary. Everything outside `host` is deterministic (virtual clock, seeded
// PRNG); `host` holds the wall-clock figures and is left out with { wall: false }.
import type { RunResult, VmResult } from "../testbed.js";
import type { DirStats as IoStats } from "../workload/job.js";
import type { DirStats } from "../fabric/link.js";
import { PERCENTILES } from "../workload/histogram.js";

const NS_PER_S = 1e9;
const KIB = 1024;

export interface ReportOptions {
  /** Include the wall-clock figures (`host`); false gives byte-identical output per seed. */
  wall: boolean;
  version: string;
}

/** fio's percentile keys: "99.900000". */
const pctKey = (p: number) => p.toFixed(6);
const round3 = (x: number) => Math.round(x * 1000) / 1000;

function throughput(d: IoStats, ns: number) {
  const s = ns / NS_PER_S;
  const bytesPerS = s > 0 ? d.bytes / s : 0;
  return { iops: s > 0 ? round3(d.ios / s) : 0, bw: Math.floor(bytesPerS / KIB), bw_bytes: Math.floor(bytesPerS) };
}

function dirJson(d: IoStats, ns: number) {
  const h = d.lat;
  const percentile: Record<string, number> = {};
  for (const p of PERCENTILES) percentile[pctKey(p)] = h.percentile(p);
  return {
    io_bytes: d.bytes,
    io_kbytes: Math.floor(d.bytes / KIB),
    total_ios: d.ios,
    ...throughput(d, ns),
    runtime: Math.round(ns / 1e6), // ms, like fio
    clat_ns: { min: h.count ? h.min : 0, max: h.max, mean: round3(h.mean), N: h.count, percentile },
  };
}

function jobJson(j: VmResult) {
  const ns = j.endNs - j.startNs;
  const o = j.options;
  return {
    jobname: j.vm,
    device: j.device,
    error: j.firstError,
    total_err: j.errors,
    verify_errors: j.verifyErrors,
    ...(j.verifyDetail ? { verify_detail: j.verifyDetail } : {}),
    "job options": { rw: o.rw, rwmixread: o.rwmixread, bs: o.bs, iodepth: o.iodepth, number_ios: o.number_ios ?? null, runtime: o.runtime ?? null, verify: o.verify, seed: o.seed },
    job_runtime_ns: ns,
    read: dirJson(j.read, ns),
    write: dirJson(j.write, ns),
  };
}

/** The run as one fio-like JSON object. IOPS and bandwidth in `jobs` are on the virtual clock. */
export function toJson(r: RunResult, opts: ReportOptions): object {
  const out: Record<string, unknown> = {
    "fio version": `wasm-dpu-${opts.version}`,
    scenario: r.scenario,
    seed: r.seed,
    ok: runOk(r),
    stalled: r.stalled,
    virtual: { runtime_ns: r.virtualNs, polls: r.polls, cost_model: r.cost },
    jobs: r.jobs.map(jobJson),
    firmware: r.firmware,
    ...(r.target ? { target: r.target } : {}),
  };
  if (opts.wall) {
    out.host = {
      timestamp: Math.floor(Date.now() / 1000), // like fio's, seconds since the epoch
      wall_ns: r.wallNs,
      jobs: r.jobs.map((j) => ({ jobname: j.vm, read: throughput(j.read, r.wallNs), write: throughput(j.write, r.wallNs) })),
      total_iops: round3(r.jobs.reduce((a, j) => a + j.read.ios + j.write.ios, 0) / (r.wallNs / NS_PER_S)),
    };
  }
  return out;
}

/** True when every IO succeeded and verified. */
export function runOk(r: RunResult): boolean {
  return !r.stalled && r.jobs.every((j) => j.errors === 0 && j.verifyErrors === 0 && j.strayCompletions === 0);
}

// ---- human summary ----

function si(x: number): string {
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)}G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(0);
}

function bytesPerS(x: number): string {
  const units = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
  let i = 0;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
  return `${x.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function ns(x: number): string {
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)} s`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} ms`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} µs`;
  return `${Math.round(x)} ns`;
}

function dirLine(name: string, d: IoStats, wallNs: number): string {
  if (d.lat.count === 0) return `  ${name}: none`;
  const t = throughput(d, wallNs);
  return `  ${name}: ${si(t.iops)} IOPS, ${bytesPerS(t.bw_bytes)} (wall); latency p50 ${ns(d.lat.percentile(50))}, p99 ${ns(d.lat.percentile(99))} (virtual)`;
}

/** The link's faults, the NIC's work and errors, the controllers' commands. */
function targetLines(t: NonNullable<RunResult["target"]>): string[] {
  const dir = (name: string, d: DirStats) => `${name} ${d.frames} frames (lost ${d.lost}, reordered ${d.reordered}, duplicated ${d.duplicated})`;
  const c = t.nic.counters, errs = Object.entries(t.nic.errors);
  const cmds = t.controllers.map((k) => `#${k.k} ${Object.values(k.commands).reduce((a, b) => a + b, 0)}`).join(", ");
  return [
    `link: ${dir("dpu→nic", t.link["dpu->nic"])}; ${dir("nic→dpu", t.link["nic->dpu"])}`,
    `storage NIC: ${c.nic_wqes_fetched ?? 0} WQEs fetched, ${c.nic_fast_path_sends ?? 0} sent on the tail fast path; commands by controller: ${cmds}`,
    `storage NIC errors: ${errs.length ? errs.map(([k, v]) => `${k}=${v}`).join(", ") : "none"}`,
    ...t.events.map((e) => `event at ${ns(e.fired_ns)}: ${e.event} ${e.controller}`),
    ...(t.events.length ? [`failover: ${t.failover.takeovers} takeovers, ${t.failover.failbacks} failbacks, ${t.failover.commandsMoved} commands moved; host reconnects ${t.reconnect.reconnects}, resubmitted ${t.reconnect.resubmitted}`] : []),
  ];
}

/** A few lines per job and the firmware's errors by reason. */
export function summary(r: RunResult): string {
  const ios = r.jobs.reduce((a, j) => a + j.read.ios + j.write.ios, 0);
  const lines = [`scenario ${r.scenario}, seed ${r.seed}: ${ios} IOs in ${ns(r.wallNs)} wall, ${ns(r.virtualNs)} virtual (${r.polls} polls)`];
  for (const j of r.jobs) {
    lines.push(`${j.vm} (${j.device}): errors ${j.errors}, verify errors ${j.verifyErrors}${j.strayCompletions ? `, stray completions ${j.strayCompletions}` : ""}`);
    lines.push(dirLine("read ", j.read, r.wallNs), dirLine("write", j.write, r.wallNs));
    if (j.verifyDetail) lines.push(`  first verify error: ${j.verifyDetail}`);
  }
  const errs = Object.entries(r.firmware.errors);
  lines.push(`firmware errors: ${errs.length ? errs.map(([k, v]) => `${k}=${v}`).join(", ") : "none"}`);
  if (r.target) lines.push(...targetLines(r.target));
  if (r.stalled) lines.push("run stalled: IOs stopped completing; the ones in flight count as errors");
  lines.push(runOk(r) ? "result: ok" : "result: FAILED");
  return lines.join("\n");
}
