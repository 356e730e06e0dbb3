// Interrupts and notifications: EVENT_IDX both ways, NO_INTERRUPT / NO_NOTIFY, packed
// event suppression, polling mode without doorbells, coalescing, MSI-X masking.
import { describe, it, expect } from "vitest";
import { rig, drain } from "./setup.js";
import { BlkOp } from "../../host/guest/driver.js";
import { MSIX_ENTRY_SIZE } from "../../host/pcie/msix.js";
import { BAR_MSIX_TABLE } from "../../host/pcie/virtio-pci.js";

const reads = (r: Awaited<ReturnType<typeof rig>>, n: number, from = 0) => {
  const buf = r.guest.alloc(512 * n);
  for (let i = 0; i < n; i++) expect(r.drv.submit(BlkOp.READ, i, 1, buf + i * 512, from + i)).toBe(true);
};

describe("device → driver interrupts", () => {
  it("raises one MSI-X message per queue per poll, however many requests completed", async () => {
    const r = await rig();
    reads(r, 16);
    r.drv.kick();
    expect(drain(r, 16).length).toBe(16);
    expect(r.drv.irqs).toEqual([0, 1]);
    expect(r.card.counters().irq_raised).toBe(1);
  });

  it.each([[true], [false]])("suppresses interrupts the driver does not want (EVENT_IDX %s)", async (eventIdx) => {
    const r = await rig({ eventIdx });
    r.drv.setInterrupts(0, false); // used_event far ahead, or NO_INTERRUPT
    reads(r, 4);
    r.drv.kick();
    expect(drain(r, 4).length).toBe(4);
    expect(r.drv.irqs[1]).toBe(0);
    expect(r.card.counters().irq_suppressed).toBeGreaterThan(0);
    r.drv.setInterrupts(0, true);
    reads(r, 1, 10);
    r.drv.kick();
    expect(drain(r, 1).length).toBe(1);
    expect(r.drv.irqs[1]).toBe(1);
  });

  it("with EVENT_IDX, interrupts only when the used index passes used_event", async () => {
    const r = await rig();
    const { driver, size } = r.drv.ring(0);
    reads(r, 2);
    r.drv.kick();
    // used_event = 5: completions 1..2 (used idx 0 → 2) do not pass it
    r.guest.dv.setUint16(driver + 4 + size * 2, 5, true);
    r.card.poll();
    expect(r.drv.irqs[1]).toBe(0);
    const more = r.guest.alloc(512 * 4);
    for (let i = 0; i < 4; i++) r.drv.submit(BlkOp.READ, i, 1, more + i * 512, 10 + i);
    r.drv.kick();
    r.card.poll(); // used idx 2 → 6 passes 5
    expect(r.drv.irqs[1]).toBe(1);
  });

  it("packed ring: DISABLE in the driver event structure suppresses, DESC fires at its position", async () => {
    const r = await rig({ packed: true });
    r.drv.setInterrupts(0, false);
    reads(r, 3);
    r.drv.kick();
    expect(drain(r, 3).length).toBe(3);
    expect(r.drv.irqs[1]).toBe(0);
    r.drv.setInterrupts(0, true); // DESC at the driver's next used position
    reads(r, 2, 10);
    r.drv.kick();
    expect(drain(r, 2).length).toBe(2);
    expect(r.drv.irqs[1]).toBe(1);
  });
});

describe("driver → device notifications", () => {
  it.each([[false], [true]])("with EVENT_IDX the driver skips the doorbell the device does not need (packed %s)", async (packed) => {
    const r = await rig({ packed });
    reads(r, 2);
    r.drv.kick();
    expect(r.dev.notifies).toBe(1);
    // the device has not run since: avail_event still says "tell me at the first one"
    reads(r, 2, 10);
    r.drv.kick();
    expect(r.dev.notifies).toBe(1);
    expect(drain(r, 4).length).toBe(4); // the first doorbell covers both batches
    reads(r, 1, 20);
    r.drv.kick();
    expect(r.dev.notifies).toBe(2);
    expect(drain(r, 1).length).toBe(1);
  });

  it.each([[true], [false]])("polling mode: requests complete without any doorbell (EVENT_IDX %s)", async (eventIdx) => {
    for (const packed of [false, true]) {
      const r = await rig({ eventIdx, packed });
      r.card.setPolling(r.dev.func, 0, true);
      r.card.poll(); // the firmware tells the driver not to notify (avail_event / NO_NOTIFY / DISABLE)
      for (let round = 0; round < 3; round++) {
        reads(r, 5, round * 10);
        r.drv.kick();
        expect(drain(r, 5).length).toBe(5);
      }
      expect(r.dev.notifies).toBe(0);
      expect(r.drv.notifies).toBe(0);
      expect(r.card.counters().virtio_requests).toBe(15);
    }
  });
});

describe("interrupt delivery", () => {
  it("coalesces completions up to a threshold, and flushes the rest at the time limit", async () => {
    const r = await rig({ eventIdx: false }); // every completion is wanted: only coalescing holds them
    r.card.fw.irqSetCoalescing(r.dev.func, 1, 4, 50_000);
    reads(r, 3);
    r.drv.kick();
    r.card.poll();
    expect(r.drv.irqs[1]).toBe(0);
    expect(r.card.counters().irq_coalesced).toBe(1);
    reads(r, 1, 10);
    r.drv.kick();
    r.card.poll(); // 3 + 1 reaches the threshold
    expect(r.drv.irqs[1]).toBe(1);
    expect(drain(r, 4).length).toBe(4);
    reads(r, 1, 20);
    r.drv.kick();
    r.card.poll();
    expect(r.drv.irqs[1]).toBe(1);
    r.card.now += 60_000;
    r.card.poll(); // the time limit has passed
    expect(r.drv.irqs[1]).toBe(2);
  });

  it("a masked MSI-X vector holds the message pending until it is unmasked", async () => {
    const r = await rig();
    const ctrl = BAR_MSIX_TABLE + 1 * MSIX_ENTRY_SIZE + 12;
    r.dev.mmioWrite(ctrl, 4, 1); // mask vector 1 (queue 0)
    reads(r, 2);
    r.drv.kick();
    expect(drain(r, 2).length).toBe(2);
    expect(r.drv.irqs[1]).toBe(0);
    expect(r.dev.msix.pending(1)).toBe(true);
    r.dev.mmioWrite(ctrl, 4, 0);
    expect(r.drv.irqs[1]).toBe(1);
    expect(r.dev.msix.pending(1)).toBe(false);
  });
});
