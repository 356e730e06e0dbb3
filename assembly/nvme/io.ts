// NVMe front end (placeholder until the NVMe controller lands).
export function nvmeServiceQueue(f: u32, q: u32, budget: u32): u32 { return 0; }
export function nvmeIoComplete(r: u32): void {}
export function nvmeFuncReset(f: u32): void {}
