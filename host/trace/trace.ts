// A structured trace of testbed events on the virtual clock: filterable, exportable as
// JSON lines (one event per line) and as Chrome trace format (chrome://tracing, Perfetto:
// https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU).
import type { EventKind, TestbedEvent } from "./events.js";

export interface TraceFilter {
  /** Keep only these kinds. */
  kinds?: readonly EventKind[];
  /** Keep only events of this VM (by name). */
  vm?: string;
  /** Virtual time window [from, to) in ns. */
  from?: number;
  to?: number;
  /** Any other test. */
  where?: (e: TestbedEvent) => boolean;
}

export interface TracerOptions {
  /** Record only these kinds (default: every kind except "poll"). */
  kinds?: readonly EventKind[];
  /** Stop recording after this many events (default 1,000,000); `dropped` counts the rest. */
  limit?: number;
}

const DEFAULT_LIMIT = 1_000_000;

/** Does the event pass the filter? */
export function matches(e: TestbedEvent, f: TraceFilter): boolean {
  if (f.kinds && !f.kinds.includes(e.kind)) return false;
  if (f.vm !== undefined && (!("vm" in e) || e.vm !== f.vm)) return false;
  if (f.from !== undefined && e.t < f.from) return false;
  if (f.to !== undefined && e.t >= f.to) return false;
  return !f.where || f.where(e);
}

/** JSON for an event: Uint8Array fields as hex strings. */
function plain(e: TestbedEvent): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) o[k] = v instanceof Uint8Array ? Buffer_hex(v) : v;
  return o;
}

function Buffer_hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, "0");
  return s;
}

export class Tracer {
  readonly events: TestbedEvent[] = [];
  /** Events not recorded because the limit was reached. */
  dropped = 0;
  readonly kinds: ReadonlySet<EventKind> | undefined;
  readonly limit: number;

  constructor(o: TracerOptions = {}) {
    this.kinds = o.kinds ? new Set(o.kinds) : undefined;
    this.limit = o.limit ?? DEFAULT_LIMIT;
  }

  /** Would an event of this kind be recorded? */
  wants(kind: EventKind): boolean { return this.kinds ? this.kinds.has(kind) : kind !== "poll"; }

  record(e: TestbedEvent): void {
    if (!this.wants(e.kind)) return;
    if (this.events.length >= this.limit) { this.dropped++; return; }
    this.events.push(e);
  }

  /** The recorded events that pass the filter, in order. */
  filter(f: TraceFilter = {}): TestbedEvent[] { return this.events.filter((e) => matches(e, f)); }

  clear(): void { this.events.length = 0; this.dropped = 0; }

  /** One JSON object per line, in order (a trailing newline when non-empty). */
  toJsonLines(f: TraceFilter = {}): string {
    const out = this.filter(f).map((e) => JSON.stringify(plain(e)));
    return out.length ? out.join("\n") + "\n" : "";
  }

  /**
   * Chrome trace format (JSON object form). One process (the card); thread 0 is the
   * firmware/card, thread 1 + i is VM i, and each link direction has a thread of its own
   * after LINK_TID ("link dpu-nic to-target"). API and job IOs become complete ("X") events
   * from submit to completion; everything else is an instant ("i") event. Times in µs.
   */
  toChromeTrace(f: TraceFilter = {}, vmIndex: (vm: string) => number = () => 0): { traceEvents: object[]; displayTimeUnit: "ns" } {
    const evs = this.filter(f);
    const out: object[] = [{ name: "process_name", ph: "M", pid: 1, tid: 0, args: { name: "wasm-dpu card" } }];
    const threads = new Map<number, string>([[0, "card"]]);
    const open = new Map<string, TestbedEvent>();
    const linkTids = new Map<string, number>();
    for (const e of evs) {
      const vm = "vm" in e && typeof e.vm === "string" ? e.vm : undefined;
      let tid = vm === undefined ? 0 : 1 + vmIndex(vm);
      if (vm !== undefined && !threads.has(tid)) threads.set(tid, `vm ${vm}`);
      if (e.kind === "frame" || e.kind === "link") {
        const name = e.kind === "frame" ? `link ${e.link} ${e.direction}` : `link ${e.link}`;
        tid = linkTids.get(name) ?? LINK_TID + linkTids.size;
        if (!linkTids.has(name)) { linkTids.set(name, tid); threads.set(tid, name); }
      }
      const ts = e.t / 1000;
      if (e.kind === "submit") { open.set(`${e.vm}/${e.source}/${e.tag}`, e); continue; }
      if (e.kind === "completion") {
        const s = open.get(`${e.vm}/${e.source}/${e.tag}`);
        if (s && s.kind === "submit") {
          open.delete(`${e.vm}/${e.source}/${e.tag}`);
          out.push({ name: `${s.op} ${s.lba}+${s.blocks}`, cat: `io,${e.source}`, ph: "X", ts: s.t / 1000, dur: (e.t - s.t) / 1000, pid: 1, tid,
            args: { tag: e.tag, status: e.status } });
          continue;
        }
      }
      const { t: _t, seq: _s, kind, ...args } = plain(e) as Record<string, unknown> & { t: number; seq: number; kind: string };
      out.push({ name: eventName(e), cat: kind, ph: "i", s: "t", ts, pid: 1, tid, args });
    }
    for (const s of open.values()) {
      if (s.kind !== "submit") continue;
      const tid = 1 + vmIndex(s.vm);
      out.push({ name: `${s.op} ${s.lba}+${s.blocks} (not completed)`, cat: `io,${s.source}`, ph: "i", s: "t", ts: s.t / 1000, pid: 1, tid, args: { tag: s.tag } });
    }
    for (const [tid, name] of threads) if (tid !== 0) out.push({ name: "thread_name", ph: "M", pid: 1, tid, args: { name } });
    return { traceEvents: out, displayTimeUnit: "ns" };
  }
}

/** Chrome trace threads of link directions start here (VM threads are 1 + VM index). */
const LINK_TID = 1000;

function eventName(e: TestbedEvent): string {
  switch (e.kind) {
    case "frame": return `${e.dir} ${e.op ?? "frame"}${e.psn !== undefined ? ` psn ${e.psn}` : ""}${e.dropped ? ` (${e.dropped})` : ""}`;
    case "link": return `link ${e.link} ${e.up ? "up" : "down"}`;
    case "wqe": return `wqe ${e.controller}#${e.index} ${e.stage} qp ${e.qpn} cid ${e.cid}${e.refused ? ` (refused: ${e.refused})` : ""}`;
    case "controller": return `controller ${e.controller}: ${e.from} → ${e.to}`;
    case "doorbell": return `doorbell q${e.queue}${e.dropped ? " (dropped)" : e.delayedUntil !== undefined ? " (delayed)" : ""}`;
    case "dma": return `dma ${e.dir}${e.denied ? " denied" : ""} ${e.len}B`;
    case "state": return `${e.machine}${e.queue !== undefined ? ` ${e.queue}` : ""}: ${e.from} → ${e.to}`;
    case "fault": return `fault ${e.fault}`;
    case "completion": return `completion ${e.tag} status ${e.status}`;
    case "irq": return `irq 0x${e.vectors.toString(16)}`;
    default: return e.kind;
  }
}
