// The NVMe device model: PCI config space, controller registers, doorbells, MSI-X.
import { describe, it, expect } from "vitest";
import { Card } from "../../host/card.js";
import { NvmePci } from "../../host/pcie/nvme-pci.js";
import { Opc } from "../../host/guest/nvme.js";
import { PCI_CAP_PTR, PCI_CAP_ID_PCIE, PCI_CAP_ID_MSIX, PCI_VENDOR_ID, PCI_DEVICE_ID, PCI_CLASS_PROG } from "../../host/pcie/config.js";
import * as M from "../../assembly/memmap.js";
import * as R from "../../assembly/nvme/regs.js";
import { rig, runUntil } from "./setup.js";

async function bare(): Promise<{ card: Card; dev: NvmePci }> {
  const card = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [{ kind: "memory", bytes: 1 << 20, blockSize: 512 }] });
  return { card, dev: new NvmePci(card, { guest: 0, disk: 0, ioQueues: 4 }) };
}

describe("NVMe device model", () => {
  it("presents an NVMe class code, IDs, a PCIe capability and MSI-X in BAR0 above the doorbells", async () => {
    const { dev } = await bare();
    const cfg = dev.config;
    expect(cfg.read(PCI_VENDOR_ID, 2)).toBe(R.NVME_VENDOR_ID);
    expect(cfg.read(PCI_DEVICE_ID, 2)).toBe(R.NVME_DEVICE_ID);
    expect(cfg.read(PCI_CLASS_PROG, 1) | (cfg.read(PCI_CLASS_PROG + 1, 2) << 8)).toBe(0x010802);
    const caps = new Map<number, number>();
    for (let p = cfg.read(PCI_CAP_PTR, 1); p !== 0; p = cfg.read(p + 1, 1)) caps.set(cfg.read(p, 1), p);
    expect([...caps.keys()].sort()).toEqual([PCI_CAP_ID_PCIE, PCI_CAP_ID_MSIX]);
    expect(cfg.read(caps.get(PCI_CAP_ID_PCIE)! + 2, 2) & 0xf).toBe(2); // capability version 2
    const msix = caps.get(PCI_CAP_ID_MSIX)!;
    expect((cfg.read(msix + 2, 2) & 0x7ff) + 1).toBe(M.MAX_VECTORS);
    expect(cfg.read(msix + 4, 4)).toBe(R.NVME_MSIX_TABLE_OFF); // BIR 0
    expect(cfg.read(msix + 8, 4)).toBe(R.NVME_MSIX_PBA_OFF);
    expect(R.NVME_MSIX_TABLE_OFF).toBeGreaterThanOrEqual(R.NVME_DB_BASE + 2 * M.MAX_QUEUES * R.NVME_DB_STRIDE);
    // BAR0 sizing: 16 KiB, 64-bit memory.
    cfg.write(0x10, 4, 0xffffffff);
    expect(cfg.read(0x10, 4)).toBe(((~(M.BAR_SIZE - 1)) | 0b100) >>> 0);
  });

  it("reports CAP and VS, and keeps read-only registers read-only", async () => {
    const { dev } = await bare();
    const lo = dev.read(R.NVME_REG_CAP), hi = dev.read(R.NVME_REG_CAP + 4);
    expect(lo & 0xffff).toBe(R.NVME_MQES);
    expect((lo >>> 16) & 1).toBe(1); // CQR
    expect(lo >>> 24).toBe(R.NVME_CAP_TO);
    expect(hi & 0xf).toBe(0); // DSTRD
    expect((hi >>> 5) & 0xff).toBe(1); // CSS: NVM
    expect((hi >>> 16) & 0xff).toBe(0); // MPSMIN = MPSMAX = 0: 4 KiB
    expect(dev.read(R.NVME_REG_VS)).toBe(0x00020000);
    dev.write(R.NVME_REG_CAP, 0);
    dev.write(R.NVME_REG_VS, 0);
    dev.write(R.NVME_REG_CSTS, 0xffffffff);
    expect(dev.read(R.NVME_REG_CAP) & 0xffff).toBe(R.NVME_MQES);
    expect(dev.read(R.NVME_REG_VS)).toBe(0x00020000);
    expect(dev.read(R.NVME_REG_CSTS)).toBe(0);
    dev.write(R.NVME_REG_INTMS, 0b101);
    dev.write(R.NVME_REG_INTMC, 0b001);
    expect(dev.read(R.NVME_REG_INTMS)).toBe(0b100);
    expect(dev.read(R.NVME_REG_INTMC)).toBe(0b100);
  });

  it("a doorbell write stores the value and sets the queue's bit, without calling the firmware", async () => {
    const { card, dev } = await bare();
    const polls = card.counters().polls;
    dev.write(R.NVME_DB_BASE + 3 * 2 * R.NVME_DB_STRIDE, 17); // SQ 3 tail
    dev.write(R.NVME_DB_BASE + (2 * 2 + 1) * R.NVME_DB_STRIDE, 5); // CQ 2 head
    expect(card.counters().polls).toBe(polls);
    expect(card.dv.getUint32(M.DOORBELL_BASE, true)).toBe(0b1100);
    expect(card.dv.getUint32(dev.bar + R.NVME_DB_BASE + 6 * R.NVME_DB_STRIDE, true)).toBe(17);
    expect(card.dv.getUint32(dev.bar + R.NVME_DB_BASE + 5 * R.NVME_DB_STRIDE, true)).toBe(5);
  });

  it("rejects an enable with an unsupported page size or command set (CSTS.CFS)", async () => {
    const { card, dev } = await bare();
    dev.write(R.NVME_REG_AQA, 7 | (7 << 16));
    dev.write(R.NVME_REG_ASQ, 0x1000, 8);
    dev.write(R.NVME_REG_ACQ, 0x2000, 8);
    dev.write(R.NVME_REG_CC, 1 | (1 << R.NVME_CC_MPS_SHIFT)); // 8 KiB pages
    expect(dev.read(R.NVME_REG_CSTS)).toBe(R.NVME_CSTS_CFS);
    dev.write(R.NVME_REG_CC, 0);
    expect(dev.read(R.NVME_REG_CSTS)).toBe(0);
    dev.write(R.NVME_REG_CC, 1);
    expect(dev.read(R.NVME_REG_CSTS)).toBe(R.NVME_CSTS_RDY);
    expect(card.errors()).toEqual({ err_nvme_controller_fatal: 1 });
  });

  it("sends MSI-X messages per CQ vector, and none for a CQ created with IEN = 0", async () => {
    const r = await rig(4096, { ioQueues: 2 });
    const g = r.drv.guest;
    expect(r.drv.adminRaw({ opc: Opc.DELETE_SQ, cdw10: 2 }).status).toBe(0);
    expect(r.drv.adminRaw({ opc: Opc.DELETE_CQ, cdw10: 2 }).status).toBe(0);
    const q = r.drv.io[1]!;
    expect(r.drv.adminRaw({ opc: Opc.CREATE_CQ, prp1: q.cqGpa, cdw10: 2 | ((q.size - 1) << 16), cdw11: 1 | (2 << 16) }).status).toBe(0); // IEN = 0
    expect(r.drv.adminRaw({ opc: Opc.CREATE_SQ, prp1: q.sqGpa, cdw10: 2 | ((q.size - 1) << 16), cdw11: 1 | (2 << 16) }).status).toBe(0);
    const buf = g.alloc(4096);
    const before = [...r.drv.irqs];
    r.drv.submitRaw(2, { opc: Opc.READ, nsid: 1, prp1: buf }, 0);
    r.drv.submitRaw(1, { opc: Opc.READ, nsid: 1, prp1: buf }, 0);
    r.drv.kick();
    runUntil(r, 2, (_t, s) => expect(s).toBe(0));
    expect(r.drv.irqs[1]! - before[1]!).toBe(1);
    expect(r.drv.irqs[2]! - before[2]!).toBe(0);
    expect(r.dev.msix.sent).toBeGreaterThan(0);
  });
});
