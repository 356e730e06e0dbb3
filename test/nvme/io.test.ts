import { describe, it, expect } from "vitest";
import { BlkOp } from "../../host/guest/driver.js";
import * as R from "../../assembly/nvme/regs.js";
import { rig, io, diskBytes, pattern, runUntil } from "./setup.js";

describe.each([512, 4096])("NVMe data path, %i-byte LBA format", (bs) => {
  it("brings the controller up and reports the namespace geometry", async () => {
    const r = await rig(bs);
    expect(r.dev.read(R.NVME_REG_CSTS) & R.NVME_CSTS_RDY).toBe(1);
    expect(r.drv.blockSize).toBe(bs);
    expect(r.drv.capacityBlocks).toBe((4 << 20) / bs);
  });

  it("writes then reads back with PRP1 only", async () => {
    const r = await rig(bs);
    const g = r.drv.guest;
    const buf = g.alloc(8192);
    const data = pattern(bs, 1);
    g.u8.set(data, buf + 64); // PRP1 with an offset, inside one page
    expect(io(r, BlkOp.WRITE, 3, 1, buf + 64)).toBe(0);
    expect(diskBytes(r).subarray(3 * bs, 4 * bs)).toEqual(data);
    g.u8.fill(0, buf, buf + 8192);
    expect(io(r, BlkOp.READ, 3, 1, buf + 64)).toBe(0);
    expect(g.u8.subarray(buf + 64, buf + 64 + bs)).toEqual(data);
  });
});
