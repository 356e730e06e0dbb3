// NVMe local path throughput: 4 KiB random read/write at iodepth 32 through the guest
// driver, the device model and the firmware on a memory disk. One bench iteration is
// one round of 32 requests (submit, one kick, one poll, one reap): IOPS = hz x 32.
// Run: npx vitest bench test/nvme   (target: >= 2 M IOPS, i.e. >= 62.5 k rounds/s)
import { bench, describe } from "vitest";
import { BlkOp } from "../../host/guest/driver.js";
import { rig } from "./setup.js";

const QD = 32;
const r = await rig(4096, { queueSize: 64 });
const bufs = Array.from({ length: QD }, () => r.drv.guest.alloc(4096));
const blocks = r.drv.capacityBlocks;
let x = 1;

function round(): void {
  for (let t = 0; t < QD; t++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    r.drv.submit(x & 1 ? BlkOp.READ : BlkOp.WRITE, (x >>> 8) % blocks, 1, bufs[t]!, t);
  }
  r.drv.kick();
  r.card.poll(256);
  if (r.drv.reap(() => {}) !== QD) throw new Error("round did not complete");
}

describe("NVMe 4 KiB randrw, iodepth 32", () => {
  bench("one round of 32 I/Os (IOPS = hz x 32)", round, { time: 1000 });
});
