// A snapshot of a whole testbed: every card's memory image, the host state (drivers,
// device models, jobs and their PRNGs, the clock) and what the API layer keeps.
// Restoring it into a testbed built from the same scenario and running again gives a
// byte-identical result. In memory it is plain data; host/snapshot/file.ts stores it.
import type { Scenario } from "../scenario.js";
import type { Saved } from "./state.js";
import type { MemoryImage } from "./image.js";

export const SNAPSHOT_FORMAT = "wasm-dpu-snapshot";
export const SNAPSHOT_VERSION = 1;

/** How the testbed was built (restoring needs the same). */
export interface SnapshotBuild {
  workload: boolean;
  hostBackends: boolean;
}

export interface Snapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  scenario: Scenario;
  build: SnapshotBuild;
  /** Virtual time (ns) when it was taken. */
  now: number;
  /** One memory image per card (today: one card), zero pages left out. */
  memories: MemoryImage[];
  /** Host objects' state (host/snapshot/state.ts). */
  host: Saved;
}
