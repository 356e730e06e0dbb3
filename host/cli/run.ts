// `wasm-dpu` commands, separate from process handling so tests can call them:
// cli(argv, io) returns the exit status (0 ok, 1 IO or verify errors, 2 usage or scenario).
import { parseArgs } from "node:util";
import { ScenarioError, loadScenario, DEFAULT_SCENARIO, BUILTIN_SCENARIOS, type Overrides } from "../scenario.js";
import { Testbed, type Progress, type RunResult } from "../index.js";
import { parseDuration } from "../workload/units.js";
import { toJson, summary, runOk } from "./report.js";
import { version } from "./version.js";
import { createTestbed, type DpuTestbed } from "../api/testbed.js";
import { saveSnapshot, restoreTestbedFile } from "../api/node.js";
import { createPcapFile } from "../fabric/pcap-file.js";
import type { PcapWriter } from "../fabric/pcap.js";

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Progress sink (a progress bar on a TTY); absent: no progress. */
  progress?: { start(): void; update(p: Progress): void; stop(): void };
}

export const USAGE = `usage: wasm-dpu run [--scenario NAME|FILE] [--seed N] [--ios N | --runtime T] [--json] [--no-wall] [--quiet]
                    [--pcap FILE] [--snapshot-at T --snapshot FILE] [--restore FILE]
       wasm-dpu replay FILE.pcap [--json] [--batch N]   (see wasm-dpu replay --help)
       wasm-dpu --version | --help

Runs a scenario: one DPU card, its VMs with virtio-blk or NVMe devices, one fio-like
job per VM; disks are on the DPU or, with transport "rdma", behind a storage target
reached as NVMe-oF over RoCEv2 (scenario rdma). Latency is measured on the virtual
clock, throughput on both clocks.

  --scenario NAME|FILE  built-in scenario (${Object.keys(BUILTIN_SCENARIOS).join(", ")}; default ${DEFAULT_SCENARIO}) or a JSON file
  --seed N              seed for every job's PRNG (0..4294967295)
  --ios N               IOs per job (replaces number_ios/runtime of the scenario)
  --runtime T           virtual run time per job, e.g. 5ms, 2s
  --json                print one fio-like JSON object
  --no-wall             leave wall-clock figures out (output is then identical per seed)
  --quiet               no progress bar
  --pcap FILE           write every frame that crosses the fabric to FILE (pcap, Ethernet,
                        nanosecond timestamps on the virtual clock); needs a disk with transport rdma
  --snapshot-at T       with --snapshot: save the whole testbed at virtual time T, then run on
  --snapshot FILE       where to save it
  --restore FILE        resume a saved testbed and run its jobs to their end (the scenario,
                        seed and IO counts come from the snapshot)
exit status: 0 all IOs succeeded and verified, 1 IO or verify errors, 2 usage or scenario error`;

class UsageError extends Error {}

const OPTIONS = {
  scenario: { type: "string" },
  seed: { type: "string" },
  ios: { type: "string" },
  runtime: { type: "string" },
  json: { type: "boolean" },
  "no-wall": { type: "boolean" },
  quiet: { type: "boolean" },
  pcap: { type: "string" },
  "snapshot-at": { type: "string" },
  snapshot: { type: "string" },
  restore: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    // node's messages are long and multi-line; keep the first sentence.
    throw new UsageError((e as Error).message.split(/\.\s|\n/)[0]!.replace(/'/g, ""));
  }
}

function usage(io: CliIo, msg: string): number {
  io.err(`wasm-dpu: ${msg} (see wasm-dpu --help)`);
  return EXIT_USAGE;
}

function integer(name: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name}: "${v}" is not a whole number in ${min}..${max}`);
  return Number(v);
}

function overrides(v: ReturnType<typeof parse>["values"]): Overrides {
  const o: Overrides = {};
  if (v.seed !== undefined) o.seed = integer("seed", v.seed, 0, 0xffffffff);
  if (v.ios !== undefined && v.runtime !== undefined) throw new UsageError("--ios and --runtime exclude each other");
  if (v.ios !== undefined) o.number_ios = integer("ios", v.ios, 1, Number.MAX_SAFE_INTEGER);
  if (v.runtime !== undefined) {
    try {
      o.runtime = parseDuration(v.runtime);
    } catch (e) {
      throw new UsageError(`--runtime: ${(e as Error).message}`);
    }
    if (o.runtime <= 0) throw new UsageError("--runtime: must be longer than 0");
  }
  return o;
}

export async function cli(argv: string[], io: CliIo): Promise<number> {
  let args: ReturnType<typeof parse>;
  let o: Overrides;
  try {
    args = parse(argv);
    if (args.values.help) { io.out(USAGE); return EXIT_OK; }
    if (args.values.version) { io.out(version); return EXIT_OK; }
    const [cmd, ...extra] = args.positionals;
    if (cmd !== "run") throw new UsageError(cmd === undefined ? "missing command (run)" : `unknown command "${cmd}"`);
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    o = overrides(args.values);
    snapshotArgs(args.values);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`wasm-dpu: ${e.message} (see wasm-dpu --help)`);
    return EXIT_USAGE;
  }
  return run(args.values, o, io);
}

/** --snapshot-at/--snapshot go together; --restore takes everything else from the snapshot. */
function snapshotArgs(v: ReturnType<typeof parse>["values"]): void {
  if ((v["snapshot-at"] === undefined) !== (v.snapshot === undefined)) throw new UsageError("--snapshot-at and --snapshot go together");
  if (v["snapshot-at"] !== undefined) {
    try {
      if (parseDuration(v["snapshot-at"]) < 0) throw new Error("must not be negative");
    } catch (e) {
      throw new UsageError(`--snapshot-at: ${(e as Error).message}`);
    }
  }
  if (v.restore !== undefined) {
    for (const k of ["scenario", "seed", "ios", "runtime", "snapshot"] as const) {
      if (v[k] !== undefined) throw new UsageError(`--restore resumes the snapshot's own run; --${k} cannot change it`);
    }
  }
}

async function run(v: ReturnType<typeof parse>["values"], o: Overrides, io: CliIo): Promise<number> {
  if (v.restore !== undefined || v.snapshot !== undefined) {
    if (v.pcap !== undefined) return usage(io, "--pcap cannot be combined with --snapshot or --restore");
    return runWithSnapshots(v, o, io);
  }
  let scenario;
  try {
    scenario = await loadScenario(v.scenario ?? DEFAULT_SCENARIO, o);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    io.err(`wasm-dpu: ${e.message}`);
    return EXIT_USAGE;
  }
  if (v.pcap !== undefined && !scenario.target) return usage(io, `--pcap: scenario "${scenario.name}" sends no frames (no disk has transport "rdma"; try --scenario rdma)`);
  let pcap: PcapWriter | undefined;
  let tb: Testbed;
  try {
    if (v.pcap !== undefined) pcap = createPcapFile(v.pcap);
    tb = await Testbed.create(scenario, { pcap });
  } catch (e) {
    pcap?.close();
    // A disk that cannot open, a device that refuses the setup, a job that cannot fit, a capture file that cannot be written.
    io.err(`wasm-dpu: ${(e as Error).message}`);
    return EXIT_USAGE;
  }
  return report(v, io, (onProgress) => tb.run({ onProgress }), () => { tb.close(); pcap?.close(); });
}

/** Run with the progress bar, print the result (JSON or summary), close; the exit status. */
function report(v: ReturnType<typeof parse>["values"], io: CliIo, go: (onProgress?: (p: Progress) => void) => RunResult, close: () => void): number {
  const bar = v.quiet ? undefined : io.progress;
  let result;
  try {
    bar?.start();
    result = go(bar ? (p) => bar.update(p) : undefined);
  } catch (e) {
    io.err(`wasm-dpu: run failed: ${(e as Error).message}`);
    return EXIT_FAILED;
  } finally {
    bar?.stop();
    close();
  }
  if (v.json) io.out(JSON.stringify(toJson(result, { wall: !v["no-wall"], version }), null, 2));
  else io.out(summary(result));
  return runOk(result) ? EXIT_OK : EXIT_FAILED;
}
 
/** The run loop of the testbed API, which can save and resume a run; same output as run(). */
async function runWithSnapshots(v: ReturnType<typeof parse>["values"], o: Overrides, io: CliIo): Promise<number> {
  let tb: DpuTestbed;
  try {
    if (v.restore !== undefined) tb = await restoreTestbedFile(v.restore, { workload: true });
    else tb = await createTestbed(v.scenario ?? DEFAULT_SCENARIO, { ...o, workload: true });
  } catch (e) {
    io.err(`wasm-dpu: ${(e as Error).message.replace(/^createTestbed: /, "")}`);
    return EXIT_USAGE;
  }
  return report(v, io, (onProgress) => {
    if (v.snapshot !== undefined) {
      const at = parseDuration(v["snapshot-at"]!);
      const jobs = tb.testbed.jobs;
      tb.runUntil(() => tb.now >= at || jobs.every((j) => j.done), { timeout: Infinity });
      saveSnapshot(tb, v.snapshot);
    }
    return tb.runWorkload({ onProgress });
  }, () => tb.close());
}
