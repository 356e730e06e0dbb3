// Exported NVMe entry points (setup); owned by the NVMe front end.
export function nvmeApiVersion(): u32 { return 1; }
