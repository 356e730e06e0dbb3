// Virtual time: how far the run loop advances the card's clock (card.now, ns) per
// poll. A deliberately simple cost model, so results are reproducible on any machine
// (DESIGN rule 5) and easy to reason about:
//
//   poll cost = pollNs                          fixed: doorbell scan, one JS↔WASM crossing
//             + requestNs  × requests taken     parse, LBA map, completion write-back
//             + DMA bytes / pcieBytesPerNs      data moved over PCIe (guest ↔ card)
//             + hostIoNs   × host-backend IOs   file/NBD backends served by the host
//
// An IO's latency is its completion time minus its submit time on this clock: the job
// stamps the submit at the poll's start time and the completion at its end time, so
// every IO costs at least one poll. Throughput (IOPS, bandwidth) is also reported on
// the wall clock, which measures the emulator itself, not the emulated device.
import { COUNTERS_BASE, COUNTERS_MAX } from "../assembly/memmap.js";
import { Counter } from "../assembly/counters.js";

export interface CostModel {
  pollNs: number;
  requestNs: number;
  /** PCIe 4.0 x8: 16 GT/s × 8 lanes × 128b/130b ≈ 15.75 GB/s ≈ 15.75 bytes/ns (PCIe 4.0 §4.2). */
  pcieBytesPerNs: number;
  hostIoNs: number;
}

export const DEFAULT_COST: Readonly<CostModel> = {
  pollNs: 250,
  requestNs: 120,
  pcieBytesPerNs: 15.75,
  hostIoNs: 8000,
};

/** Reads the firmware counters the cost model needs straight from card memory. */
export class VirtualClock {
  private readonly c: BigUint64Array;
  private bytes = 0;
  private hostIo = 0;

  constructor(memory: WebAssembly.Memory, readonly model: CostModel = DEFAULT_COST) {
    this.c = new BigUint64Array(memory.buffer, COUNTERS_BASE, COUNTERS_MAX);
    this.bytes = this.dmaBytes();
    this.hostIo = this.hostIos();
  }

  /** Cost (ns) of the poll that just took `requests` requests; call once after each poll. */
  charge(requests: number): number {
    const bytes = this.dmaBytes();
    const hostIo = this.hostIos();
    const m = this.model;
    const ns = m.pollNs + m.requestNs * requests + (bytes - this.bytes) / m.pcieBytesPerNs + m.hostIoNs * (hostIo - this.hostIo);
    this.bytes = bytes;
    this.hostIo = hostIo;
    return Math.round(ns);
  }

  private dmaBytes(): number { return Number(this.c[Counter.bytes_read]! + this.c[Counter.bytes_written]!); }
  private hostIos(): number { return Number(this.c[Counter.hostio_posted]!); }
}
