// Entry point of the `wasm-dpu` command (bundled to dist/cli.js by scripts/bundle.mjs).
import { SingleBar, Presets } from "cli-progress";
import { cli, type CliIo } from "./run.js";
import { replayCli } from "./replay.js";
import type { Progress } from "../testbed.js";

const PROGRESS_SCALE = 1000; // bar resolution: 0.1 %

function progressBar(): CliIo["progress"] {
  if (!process.stderr.isTTY) return undefined;
  const bar = new SingleBar(
    { stream: process.stderr, format: "running [{bar}] {percentage}% | {ios} IOs | virtual {vms} ms", hideCursor: true, clearOnComplete: true },
    Presets.shades_classic,
  );
  return {
    start: () => bar.start(PROGRESS_SCALE, 0, { ios: 0, vms: "0.0" }),
    update: (p: Progress) => bar.update(Math.floor(p.fraction * PROGRESS_SCALE), { ios: p.completed, vms: (p.virtualNs / 1e6).toFixed(1) }),
    stop: () => bar.stop(),
  };
}

const io: CliIo = {
  out: (s) => process.stdout.write(s + "\n"),
  err: (s) => process.stderr.write(s + "\n"),
  progress: progressBar(),
};

// Output piped into a reader that stops early (`| head`): stop quietly, as Unix tools do.
process.stdout.on("error", (e: NodeJS.ErrnoException) => { if (e.code === "EPIPE") process.exit(0); else throw e; });

const argv = process.argv.slice(2);
(argv[0] === "replay" ? replayCli(argv.slice(1), io) : cli(argv, io)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    // A bug, not a user error: one line, and the stack only when asked for.
    process.stderr.write(`wasm-dpu: internal error: ${(e as Error).message}\n`);
    if (process.env.WASM_DPU_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    process.exitCode = 1;
  },
);
