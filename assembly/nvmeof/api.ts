// Exported entry points of the NVMe-oF host in the DPU.
