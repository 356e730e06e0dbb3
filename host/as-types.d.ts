// assembly/memmap.ts and assembly/counters.ts are shared with the firmware; their
// AssemblyScript integer types are plain numbers on the host.
type u32 = number;
type u8 = number; // assembly/nvme/spec.ts (ASCII_SPACE) is read by host/target/
