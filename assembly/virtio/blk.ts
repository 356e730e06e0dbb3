// virtio-blk front end (placeholder until the virtio queue sync lands).
export function virtioServiceQueue(f: u32, q: u32, budget: u32): u32 { return 0; }
export function virtioBlkComplete(r: u32): void {}
export function virtioFuncReset(f: u32): void {}
