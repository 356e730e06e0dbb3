// The library for browsers: everything that does not need Node (no file backend, no CLI).
// The firmware is fetched from build/release.wasm next to dist/, or from a URL given to loadFirmware.
export { Card, FuncType, DiskKind, BlkStatus, type CardConfig, type DiskConfig } from "./card.js";
export { loadFirmware, instantiateFirmware, type Firmware } from "./loader.js";
export { MemoryBackend } from "./backends/memory.js";
export type { BlockBackend } from "./backends/types.js";
export { GuestRam } from "./guest/ram.js";
export { BlkOp, type BlockDriver } from "./guest/driver.js";
export { Counter } from "../assembly/counters.js";
