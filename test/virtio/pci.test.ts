// The virtio-pci device model: IDs and capabilities, the device status state machine
// (feature negotiation, FEATURES_OK, reset), notify = doorbell bit only.
import { describe, it, expect } from "vitest";
import { rig } from "./setup.js";
import { BlkOp } from "../../host/guest/driver.js";
import * as V from "../../assembly/virtio/layout.js";
import {
  VirtioBlkPci, CC_DEVICE_STATUS, CC_DRIVER_FEATURE, CC_DRIVER_FEATURE_SELECT, CC_QUEUE_ENABLE, CC_QUEUE_SELECT,
  CC_NUM_QUEUES, CC_QUEUE_SIZE, STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_FEATURES_OK, DevState,
  VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_DEVICE_CFG,
  NOTIFY_OFF_MULTIPLIER, BAR_NOTIFY,
} from "../../host/pcie/virtio-pci.js";
import { PCI_CAP_PTR, PCI_CAP_ID_VNDR, PCI_CAP_ID_MSIX } from "../../host/pcie/config.js";

const STATUS_UP = STATUS_ACKNOWLEDGE | STATUS_DRIVER;

function negotiate(dev: VirtioBlkPci, lo: number, hi: number): number {
  dev.mmioWrite(CC_DEVICE_STATUS, 1, 0);
  dev.mmioWrite(CC_DEVICE_STATUS, 1, STATUS_UP);
  dev.mmioWrite(CC_DRIVER_FEATURE_SELECT, 4, 0);
  dev.mmioWrite(CC_DRIVER_FEATURE, 4, lo);
  dev.mmioWrite(CC_DRIVER_FEATURE_SELECT, 4, 1);
  dev.mmioWrite(CC_DRIVER_FEATURE, 4, hi);
  dev.mmioWrite(CC_DEVICE_STATUS, 1, STATUS_UP | STATUS_FEATURES_OK);
  return dev.mmioRead(CC_DEVICE_STATUS, 1);
}

describe("virtio-pci device model", () => {
  it("is a modern virtio-blk function with the four virtio capabilities and MSI-X", async () => {
    const { dev } = await rig({ queues: 2 });
    expect(dev.configRead(0, 2)).toBe(0x1af4);
    expect(dev.configRead(2, 2)).toBe(0x1042);
    expect(dev.configRead(8, 1)).toBe(1); // revision
    expect(dev.configRead(0x0b, 1)).toBe(0x01); // mass storage
    const types: number[] = [];
    let msix = false;
    for (let p = dev.configRead(PCI_CAP_PTR, 1); p !== 0; p = dev.configRead(p + 1, 1)) {
      if (dev.configRead(p, 1) === PCI_CAP_ID_MSIX) msix = true;
      if (dev.configRead(p, 1) !== PCI_CAP_ID_VNDR) continue;
      types.push(dev.configRead(p + 3, 1));
      expect(dev.configRead(p + 4, 1)).toBe(0); // BAR0
      if (dev.configRead(p + 3, 1) === VIRTIO_PCI_CAP_NOTIFY_CFG) expect(dev.configRead(p + 16, 4)).toBe(NOTIFY_OFF_MULTIPLIER);
    }
    expect(types).toEqual([VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_DEVICE_CFG]);
    expect(msix).toBe(true);
    expect(dev.mmioRead(CC_NUM_QUEUES, 2)).toBe(2);
    dev.mmioWrite(CC_QUEUE_SELECT, 2, 5);
    expect(dev.mmioRead(CC_QUEUE_SIZE, 2)).toBe(0); // no such queue
  });

  it("refuses features it does not offer, and a driver without VERSION_1", async () => {
    const { dev } = await rig();
    expect(negotiate(dev, 1 << V.F_BLK_SIZE_MAX, 1) & STATUS_FEATURES_OK).toBe(0);
    expect(dev.state).toBe(DevState.DRIVER);
    expect(negotiate(dev, 1 << V.F_BLK_FLUSH, 0) & STATUS_FEATURES_OK).toBe(0);
    expect(negotiate(dev, 1 << V.F_BLK_FLUSH, 1 | (1 << (V.F_RING_PACKED - 32))) & STATUS_FEATURES_OK).toBe(STATUS_FEATURES_OK);
    expect(dev.state).toBe(DevState.FEATURES_OK);
  });

  it("freezes the features once FEATURES_OK is set", async () => {
    const { dev } = await rig();
    negotiate(dev, 0, 1);
    dev.mmioWrite(CC_DRIVER_FEATURE_SELECT, 4, 0);
    dev.mmioWrite(CC_DRIVER_FEATURE, 4, 1 << V.F_RING_EVENT_IDX);
    expect(dev.mmioRead(CC_DRIVER_FEATURE, 4)).toBe(0);
  });

  it("a notify write only sets the doorbell bit; the work happens in the next poll", async () => {
    const r = await rig();
    const buf = r.guest.alloc(512);
    r.drv.submit(BlkOp.READ, 0, 1, buf, 1);
    r.drv.kick();
    expect(r.dev.notifies).toBe(1);
    expect(r.card.counters().virtio_requests).toBe(0);
    expect(r.guest.dv.getUint16(r.drv.ring(0).device + V.USED_IDX, true)).toBe(0);
    r.card.poll();
    expect(r.card.counters().virtio_requests).toBe(1);
    expect(r.guest.dv.getUint16(r.drv.ring(0).device + V.USED_IDX, true)).toBe(1);
    r.dev.mmioWrite(BAR_NOTIFY + 4 * 7, 2, 7); // past the last queue: ignored
    expect(r.dev.notifies).toBe(1);
  });

  it("the firmware takes no buffers before DRIVER_OK, and keeps the doorbell for then", async () => {
    const r = await rig();
    r.card.fw.virtioSetDriverOk(r.dev.func, 0);
    const buf = r.guest.alloc(512);
    r.drv.submit(BlkOp.READ, 0, 1, buf, 1);
    r.drv.kick();
    r.card.poll();
    r.card.poll();
    expect(r.card.counters().virtio_requests).toBe(0);
    r.card.fw.virtioSetDriverOk(r.dev.func, 1);
    r.card.poll();
    expect(r.card.counters().virtio_requests).toBe(1);
  });

  it("reset (device_status = 0) disables the queues; host IO finishing afterwards is dropped", async () => {
    const r = await rig({ hostDisk: true });
    const buf = r.guest.alloc(512);
    r.drv.submit(BlkOp.READ, 0, 1, buf, 1);
    r.drv.kick();
    r.card.poll(); // posted to the host, served; its completion is reaped by the next poll
    expect(r.card.inFlight()).toBe(1);
    r.dev.mmioWrite(CC_DEVICE_STATUS, 1, 0);
    expect(r.dev.mmioRead(CC_DEVICE_STATUS, 1)).toBe(0);
    expect(r.dev.mmioRead(CC_QUEUE_ENABLE, 2)).toBe(0);
    expect(r.card.fw.virtioQueueState(r.dev.func, 0)).toBe(V.QS_DISABLED);
    const usedBefore = r.guest.u8.slice(r.drv.ring(0).device, r.drv.ring(0).device + 16);
    r.card.poll();
    expect(r.card.inFlight()).toBe(0);
    expect(r.guest.u8.slice(r.drv.ring(0).device, r.drv.ring(0).device + 16)).toEqual(usedBefore);
    expect(r.card.errors()).toEqual({ err_virtio_stale_completion: 1 }); // dropped, but never silently
  });
});
