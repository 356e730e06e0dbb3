// Protection information end to end where the NIC cannot check it: 4096-byte blocks at a path
// MTU of 1024 put no whole block in any packet, so the controller checks before sending.
import { describe, it, expect } from "vitest";
import { host, command, sgl, DATA } from "./host.js";
import { capsule, connect, propertySet, pattern, CC_ENABLE, S, F } from "./nvmf.js";
import * as R from "../../assembly/nvme/regs.js";

describe("reference tag", () => {
  for (const [mtu, bs] of [[4096, 512], [1024, 4096]] as const) {
    it(`misdirect(lba) fails the read with SCT 2h / SC 84h (MTU ${mtu}, ${bs}-byte blocks: checked by the ${mtu >= bs ? "NIC" : "controller"})`, async () => {
      const h = await host({ mtu, bs, diskBytes: 4 << 20, protection: true });
      const c = command(h, 0, connect(1, 0, 31, F.CNTLID_DYNAMIC));
      expect(command(h, 0, propertySet(2, R.NVME_REG_CC, CC_ENABLE)).status).toBe(0);
      expect(command(h, 1, connect(3, 1, 31, c.dw0)).status).toBe(0);
      const read = (cid: number, slba: number) => capsule({ opc: S.IO_READ, cid, nsid: 1, slba: BigInt(slba), cdw12: 3, sgl: sgl(h, 4 * bs) });
      expect(command(h, 1, read(4, 20)).status).toBe(0);
      h.nic.misdirect(22);
      expect(command(h, 1, read(5, 20))).toMatchObject({ cid: 5, sct: 2, sc: 0x84, dnr: true });
      expect(command(h, 1, read(6, 24)).status).toBe(0);
      if (mtu >= bs) expect(h.p.target.counters().err_nic_dif_reftag).toBe(1);
      else expect(h.nic.stats().controllers[0]!.errors.dif_reftag).toBe(1);
    });
  }
});

describe("PI with packets smaller than a block", () => {
  it("reads pass; a corrupted block fails with SCT 2h / SC 82h from the controller; the NIC checked nothing", async () => {
    const h = await host({ mtu: 1024, bs: 4096, diskBytes: 4 << 20, protection: true });
    const c = command(h, 0, connect(1, 0, 31, F.CNTLID_DYNAMIC));
    expect(command(h, 0, propertySet(2, R.NVME_REG_CC, CC_ENABLE)).status).toBe(0);
    expect(command(h, 1, connect(3, 1, 31, c.dw0)).status).toBe(0);
    const io = (opc: number, cid: number, slba: number, nlb: number, off = 0) =>
      capsule({ opc, cid, nsid: 1, slba: BigInt(slba), cdw12: nlb - 1, sgl: sgl(h, nlb * 4096, off) });
    const data = pattern(16384, 6);
    h.ram.set(data, DATA);
    expect(command(h, 1, io(S.IO_WRITE, 4, 10, 4)).status).toBe(0);
    expect(command(h, 1, io(S.IO_READ, 5, 10, 4, 0x10000)).status).toBe(0);
    expect(Buffer.compare(h.ram.subarray(DATA + 0x10000, DATA + 0x10000 + 16384), data)).toBe(0);
    h.nic.corrupt(12, 4000);
    h.ram.fill(0, DATA + 0x10000, DATA + 0x10000 + 16384);
    expect(command(h, 1, io(S.IO_READ, 6, 10, 4, 0x10000))).toMatchObject({ cid: 6, sct: 2, sc: 0x82, dnr: true });
    expect(h.ram.subarray(DATA + 0x10000, DATA + 0x10000 + 16384).every((b) => b === 0)).toBe(true); // no data went out
    expect(h.p.target.counters().nic_dif_checked).toBe(0);
    expect(h.nic.stats().controllers[0]!.errors.dif_guard).toBe(1);
  });
});
