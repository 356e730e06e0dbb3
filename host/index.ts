// The library for Node: everything needed to script a run.
//
//   import { loadScenario, runScenario } from "wasm-dpu";
//   const result = await runScenario(await loadScenario("local", { seed: 7 }));
export { Card, FuncType, DiskKind, BlkStatus, type CardConfig, type DiskConfig } from "./card.js";
export { loadFirmware, instantiateFirmware, type Firmware } from "./loader.js";
export { Counter } from "../assembly/counters.js";
/** RoCEv2 wire constants and the layouts the firmware shares (TXD_*, RXL_*, RC_*, OPT_*, Op, Pos, OpClass). */
export * as RoceWire from "../assembly/rdma/wire.js";
/** RDMA-CM wire constants (MAD and CM message offsets, NVMe-oF private data), CmState and the connection entry layout (CN_*). */
export * as RdmaCm from "../assembly/rdma/cm-wire.js";
/** RC transport layouts: memory region table, send/receive WQEs, completions, per-QP control words (assembly/rdma/rcdefs.ts). */
export * as RdmaRc from "../assembly/rdma/rcdefs.js";
export type { BlockBackend } from "./backends/types.js";
export { MemoryBackend } from "./backends/memory.js";
export { FileBackend, type FileBackendOptions } from "./backends/file.js";
export { GuestRam } from "./guest/ram.js";
export { BlkOp, type BlockDriver } from "./guest/driver.js";
export { PciConfig } from "./pcie/config.js";
export { Msix } from "./pcie/msix.js";
export { VirtioBlkPci, type VirtioBlkPciOptions, type PciFunctionBus } from "./pcie/virtio-pci.js";
export { VirtioBlkDriver, type VirtioBlkDriverOptions } from "./guest/virtio-blk.js";
export { NvmePci, type NvmePciOptions } from "./pcie/nvme-pci.js";
export { NvmeDriver, attachNvme, type NvmeDriverOptions } from "./guest/nvme.js";
export { Job, RW_MODES, type JobOptions, type JobResult, type RwMode, type DirStats } from "./workload/job.js";
export { Histogram, PERCENTILES } from "./workload/histogram.js";
export { Prng } from "./workload/prng.js";
export { parseSize, parseDuration } from "./workload/units.js";
export { DEFAULT_COST, VirtualClock, type CostModel } from "./timing.js";
export {
  parseScenario, loadScenario, ScenarioError, BUILTIN_SCENARIOS, DEFAULT_SCENARIO, DEVICES,
  type Scenario, type VmSpec, type DiskSpec, type JobSpec, type DeviceKind, type Overrides,
} from "./scenario.js";
export {
  Testbed, runScenario, registerDevice, setFileOpener, type FileOpener,
  type DeviceFactory, type DeviceModel, type AttachContext, type TestbedOptions, type RunOptions, type RunResult, type VmResult, type Progress,
} from "./testbed.js";
export { toJson, summary, runOk } from "./cli/report.js";

// In Node, file disks open through the file backend.
import { setFileOpener } from "./testbed.js";
import { FileBackend } from "./backends/file.js";
setFileOpener((path, bytes, blockSize) => new FileBackend({ path, bytes, blockSize }));

// The testbed API (issue 5): createTestbed and friends, trace and snapshot types.
export {
  createTestbed, restoreTestbed, DpuTestbed, VmHandle, TraceControl, TestbedError, IoError, RESERVED_FAULTS,
  type CreateOptions, type ScenarioInput, type Duration, type IoHandle, type IoResult, type Fault, type FaultHandle, type Trigger, type FrameMatch,
} from "./api/testbed.js";
export { saveSnapshot, restoreTestbedFile } from "./api/node.js";
export { Tracer, type TraceFilter, type TracerOptions } from "./trace/trace.js";
export {
  LIVE_EVENT_KINDS, RESERVED_EVENT_KINDS, frameSummary, type FrameSummary, type FrameDirection, type EventKind, type LiveEventKind, type ReservedEventKind, type EventOf, type TestbedEvent,
  type DoorbellEvent, type DmaEvent, type SubmitEvent, type CompletionEvent, type IrqEvent, type StateEvent, type FaultEvent, type PollEvent,
  type FrameEvent as TraceFrameEvent, type LinkEvent as TraceLinkEvent, type WqeEvent, type ControllerEvent,
} from "./trace/events.js";
export { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type Snapshot, type SnapshotBuild } from "./snapshot/snapshot.js";
export { writeSnapshotFile, readSnapshotFile } from "./snapshot/file.js";
import { setApiFileOpener } from "./api/testbed.js";
setApiFileOpener((path, bytes, blockSize) => new FileBackend({ path, bytes, blockSize }));

// The fabric (issue 3): links between cards' Ethernet frame rings, pcap capture and replay.
export { Fabric, MAX_PORTS, type FabricOptions, type FabricCounters, type FabricStats, type FabricEvent } from "./fabric/fabric.js";
export { Link, LinkDir, ETH_WIRE_OVERHEAD, type LinkOptions, type LinkEnd, type DirStats as LinkDirStats, type InjectedFault } from "./fabric/link.js";
export {
  PcapWriter, PcapParser, PcapError, MemorySink, readPcap, parsePcapHeader, LINKTYPE_ETHERNET, PCAP_MAGIC_NS, PCAP_MAGIC_US,
  type ByteSink, type PcapHeader, type PcapRecord, type PcapWriterOptions,
} from "./fabric/pcap.js";
export { createPcapFile, readPcapFile, PcapFileReader, FileSink } from "./fabric/pcap-file.js";
export { rxPush, txPush, rxDrain, bareNetMemory, type NetEndpoint } from "./fabric/ring.js";
export { Replayer, type ReplayLine } from "./cli/replay.js";

// The storage side (issues 3, 4): the NVMe-oF host bring-up and reconnect, the storage-side NIC
// and its controllers, and the remote half of a testbed that joins them over a fabric.
export { connectController, disconnectController, registerGuest, attachDisk, NvmfError, type NvmfController, type NvmfNamespace, type NvmfTargetAddress } from "./nvmeof/initiator.js";
export { NvmfReconnector, type ReconnectorOptions } from "./nvmeof/reconnect.js";
export { StorageNic, type StorageNicOptions, type FailoverStats } from "./target/nic.js";
export { StorageController, type ControllerStats } from "./target/controller.js";
export { RemoteStorage, DPU_ADDR, NIC_ADDR, type TargetReport } from "./remote.js";

// The fuzzing harness (issue 6): targets, the loop, replay, and the parts a new target is built from.
export { fuzz, replay, minimize, distill, readInput, type FuzzOptions, type FuzzReport } from "./fuzz/engine.js";
export { TARGETS, findTarget } from "./fuzz/targets/index.js";
export type { Target, Harness } from "./fuzz/target.js";
export { FuzzCard, Finding, loadFuzzFirmware } from "./fuzz/card.js";
export { ProgramCodec, havoc, type OpSpec, type Op, type Program } from "./fuzz/program.js";
export { Rng as FuzzRng } from "./fuzz/rng.js";
