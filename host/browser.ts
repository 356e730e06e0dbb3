// The library for browsers: everything that does not need Node (no file backend, no CLI).
// The firmware is fetched from build/release.wasm next to dist/, or from a URL given to loadFirmware.
export { Card, FuncType, DiskKind, BlkStatus, type CardConfig, type DiskConfig } from "./card.js";
export { loadFirmware, instantiateFirmware, type Firmware } from "./loader.js";
export { Counter } from "../assembly/counters.js";
export { MemoryBackend } from "./backends/memory.js";
export type { BlockBackend } from "./backends/types.js";
export { GuestRam } from "./guest/ram.js";
export { BlkOp, type BlockDriver } from "./guest/driver.js";
export { PciConfig } from "./pcie/config.js";
export { Msix } from "./pcie/msix.js";
export { VirtioBlkPci } from "./pcie/virtio-pci.js";
export { VirtioBlkDriver } from "./guest/virtio-blk.js";
export { NvmePci } from "./pcie/nvme-pci.js";
export { NvmeDriver } from "./guest/nvme.js";
export { Job } from "./workload/job.js";
export { parseScenario, BUILTIN_SCENARIOS, ScenarioError, type Scenario } from "./scenario.js";
export { Testbed, runScenario, setFileOpener, type RunResult } from "./testbed.js";
// The testbed API (no snapshot files here: saveSnapshot / restoreTestbedFile need Node).
export {
  createTestbed, restoreTestbed, DpuTestbed, VmHandle, TraceControl, TestbedError, IoError, RESERVED_FAULTS,
  type CreateOptions, type ScenarioInput, type Duration, type IoHandle, type IoResult, type Fault, type FaultHandle, type Trigger, type FrameMatch,
} from "./api/testbed.js";
export { Tracer, type TraceFilter, type TracerOptions } from "./trace/trace.js";
export {
  LIVE_EVENT_KINDS, RESERVED_EVENT_KINDS, frameSummary, type EventKind, type EventOf, type TestbedEvent, type FrameSummary, type FrameDirection,
  type DoorbellEvent, type DmaEvent, type SubmitEvent, type CompletionEvent, type IrqEvent, type StateEvent, type FaultEvent, type PollEvent,
  type FrameEvent, type LinkEvent, type WqeEvent, type ControllerEvent,
} from "./trace/events.js";
export type { Snapshot } from "./snapshot/snapshot.js";
