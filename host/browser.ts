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
