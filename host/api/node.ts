// Node-only parts of the testbed API: snapshot files (node:fs).
import { writeSnapshotFile, readSnapshotFile } from "../snapshot/file.js";
import { restoreTestbed, TestbedError, type DpuTestbed, type CreateOptions } from "./testbed.js";

/** Save the testbed's snapshot to a file (`wasm-dpu run --restore FILE` resumes it). */
export function saveSnapshot(tb: DpuTestbed, path: string): void {
  writeSnapshotFile(path, tb.snapshot());
}

/** Build a testbed from a snapshot file. */
export async function restoreTestbedFile(path: string, opts: Pick<CreateOptions, "module" | "trace" | "openFile" | "workload"> = {}): Promise<DpuTestbed> {
  let s;
  try {
    s = readSnapshotFile(path);
  } catch (e) {
    throw new TestbedError((e as Error).message);
  }
  return restoreTestbed(s, opts);
}
