// What a fuzz target is: one untrusted input of the firmware (DESIGN rule 4) with its
// structure-aware generator and mutator, a runner that applies every oracle, and its
// coverage feedback. Adding a target is one file under host/fuzz/targets/ plus one
// line in host/fuzz/targets/index.ts.
import type { Rng } from "./rng.js";
import type { FuzzCard } from "./card.js";

export interface Harness {
  /** Feedback points the target can reach (firmware edges in the fuzz build). */
  readonly total: number;
  /** What the feedback points are ("edges" for firmware targets). */
  readonly unit: string;
  /** A new input built from the wire format: valid headers and chains, sane indexes. */
  generate(rng: Rng): Uint8Array;
  /** `steps` (default 1) structural mutations of `input` (fields, operations), still decodable. */
  mutate(input: Uint8Array, rng: Rng, steps?: number): Uint8Array;
  /** Run one input from the baseline state; throws (a Finding, a trap, a host error) when an oracle fails. */
  run(input: Uint8Array): void;
  /** Feedback points reached since the last call, marked in `seen`; returns how many were new. */
  collect(seen: Uint8Array): number;
  /**
   * Host-side feedback beyond the firmware's edges (e.g. which statuses the TypeScript storage
   * controllers answered), marked in `seen` above the edge map; returns how many were new. An
   * input that reaches one is kept like one that reaches a new edge; "reached" counts edges only.
   */
  collectFeatures?(seen: Uint8Array): number;
  /** Longest input the engine's byte-level havoc makes (default 1024). */
  readonly maxLen?: number;
  /** Size of the `seen` map. */
  readonly mapSize: number;
  /** The expensive oracle (all card memory) — run periodically and on every replay. */
  fullAudit(): void;
  /**
   * Inputs between full audits, when the target's own per-input audit already covers what
   * the full one would (the fuzz build's dirty-page audit, with no host code writing card
   * memory); the engine's default otherwise.
   */
  readonly auditEvery?: number;
  /** Reached / total feedback points per firmware source file (or per function). */
  byFile?(seen: Uint8Array, perFunction?: boolean): Record<string, [number, number]>;
  /** The input as the runner reads it, one line per operation (for --replay --verbose). */
  explain?(input: Uint8Array): string[];
  /** Back to the baseline including bytes no input may change (before re-running to find a culprit). */
  restoreAll(): void;
  /** Back to the baseline as run() begins (targets on a FuzzCard; tests check it leaves no byte behind). */
  reset?(): void;
  /** The card under test (targets on a FuzzCard). */
  readonly fc?: FuzzCard;
}

export interface TargetOptions {
  /** Firmware module to run instead of the fuzz build (e.g. the release build, to measure the instrumentation's cost). */
  module?: WebAssembly.Module;
}

export interface Target {
  name: string;
  /** One line for --list: which untrusted input, which oracles. */
  about: string;
  create(opts?: TargetOptions): Promise<Harness>;
}
