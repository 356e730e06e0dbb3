// assembly/memmap.ts and assembly/counters.ts are shared with the firmware; their
// AssemblyScript integer types are plain numbers on the host.
type u32 = number;
