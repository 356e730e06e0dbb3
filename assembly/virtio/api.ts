// Exported virtio entry points (setup and benchmarks); owned by the virtio front end.
export function virtioApiVersion(): u32 { return 1; }
