// Testbed API figures (issue 5), each beside a reference measured in the same run:
//  - creating a testbed with 2 VMs once the firmware module is compiled, beside creating
//    a WebAssembly.Memory of the same size and instantiating the firmware in it;
//  - snapshot + restore of a testbed with 2 × 256 MiB guests (after a short workload),
//    beside a bare Uint8Array.set of the same bytes out of card memory and back.
import { createTestbed } from "../api/testbed.js";
import { loadFirmware, instantiateFirmware } from "../loader.js";
import { median, type BenchOptions, type Figure } from "./harness.js";
import "../index.js";

const BIG = {
  name: "bench-snapshot", seed: 1,
  job: { rw: "randrw", bs: "4k", iodepth: 16, verify: true, runtime: "200us" },
  vms: [
    { name: "a", ram: "256M", device: "virtio-blk", disk: { backend: "memory", size: "16M" } },
    { name: "b", ram: "256M", device: "nvme", disk: { backend: "memory", size: "16M" } },
  ],
};

function figure(name: string, a: number[], refName: string, b: number[]): Figure {
  const value = median(a), ref = median(b);
  return { name, unit: "ms", value, reference: { name: refName, value: ref }, ratio: value / ref, samples: a.length };
}

export async function benchCreate(o: BenchOptions): Promise<Figure> {
  const module = await loadFirmware();
  const warm = await createTestbed("local", { module });
  const pages = warm.card.layout.pages;
  warm.close();
  const a: number[] = [], b: number[] = [];
  for (let i = 0; i < Math.max(o.samples, 3); i++) {
    let t = performance.now();
    (await createTestbed("local", { module })).close();
    a.push(performance.now() - t);
    t = performance.now();
    const mem = new WebAssembly.Memory({ initial: pages, maximum: pages });
    (await instantiateFirmware(module, mem)).init();
    b.push(performance.now() - t);
  }
  return figure("testbed creation, 2 VMs (scenario local), firmware compiled once", a,
    "new WebAssembly.Memory of the same size + firmware instantiate", b);
}

export async function benchSnapshot(o: BenchOptions): Promise<Figure> {
  const tb = await createTestbed(BIG, { workload: true });
  tb.runFor("100us"); // data on the disks, IO in flight in the workload
  const bytes = tb.card.layout.bytes;
  // The reference copies between two buffers of its own, so it leaves the card's memory
  // as the testbed left it (pages a guest never touched stay unbacked zero pages).
  const src = tb.card.u8.slice(0, bytes);
  const copy = new Uint8Array(bytes);
  const a: number[] = [], b: number[] = [];
  tb.restore(tb.snapshot()); // warm up
  copy.set(src); src.set(copy);
  for (let i = 0; i < Math.max(o.samples, 3); i++) {
    let t = performance.now();
    const s = tb.snapshot();
    tb.restore(s);
    a.push(performance.now() - t);
    t = performance.now();
    copy.set(src);
    src.set(copy);
    b.push(performance.now() - t);
  }
  tb.close();
  return figure(`snapshot + restore, 2 × 256 MiB guests (${(bytes / 2 ** 20).toFixed(0)} MiB of card memory)`, a,
    "Uint8Array.set of the same bytes out and back", b);
}
