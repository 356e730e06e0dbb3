// A small two-VM scenario for the testbed API tests: fast to build, quick to run.
export const SMALL = {
  name: "small",
  seed: 3,
  job: { rw: "randrw", bs: "4k", iodepth: 8, verify: true, number_ios: 800 },
  vms: [
    { name: "blk", ram: "4M", device: "virtio-blk", queue_size: 64, disk: { backend: "memory", size: "2M", block_size: 512 } },
    { name: "nvme", ram: "4M", device: "nvme", queue_size: 64, disk: { backend: "memory", size: "2M", block_size: 4096 } },
  ],
};
