// End-to-end local path: a VM's fio-like job through its guest driver, the device model
// and the firmware to a RAM disk and back (4 KiB randread, iodepth 32, verify off),
// beside the rate of bare 4 KiB memory.copy calls out of a backend of the same size,
// which bounds it.
import { Testbed } from "../testbed.js";
import { parseScenario, type DeviceKind } from "../scenario.js";
import { Card } from "../card.js";
import { median, type BenchOptions, type Figure } from "./harness.js";
import "../index.js"; // registers the built-in device models and the Node file opener

const BS = 4096, DISK = 32 * 1024 * 1024;

function scenario(device: DeviceKind, ios: number) {
  return parseScenario({
    name: `bench-${device}`, seed: 1,
    vms: [{ name: "vm0", device, ram: "16M", disk: { backend: "memory", size: DISK, block_size: BS },
      job: { rw: "randread", bs: BS, iodepth: 32, verify: false, number_ios: ios } }],
  });
}

/** IOs per wall second of one run (setup not timed: the testbed times its run loop). */
async function runOnce(device: DeviceKind, ios: number): Promise<number> {
  const tb = await Testbed.create(scenario(device, ios));
  try {
    const disk = tb.card.layout.disks[0]!;
    tb.card.u8.fill(0xa5, disk.base, disk.base + DISK); // no zero-page reads: the copies come from memory
    const r = tb.run();
    if (r.jobs[0]!.errors !== 0) throw new Error(`bench: ${device} run had ${r.jobs[0]!.errors} IO errors`);
    return ios / (r.wallNs / 1e9);
  } finally {
    tb.close();
  }
}

async function copyRate(ms: number): Promise<number> {
  const card = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [{ kind: "memory", bytes: DISK, blockSize: BS }] });
  const d = card.layout.disks[0]!;
  card.u8.fill(0xa5, d.base, d.base + DISK);
  let n = 0, seed = 1;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) n += card.fw.benchRawCopy(d.base, DISK / BS, card.guests[0]!.base, 32, BS, 4096, seed++);
  return n / ((performance.now() - t0) / 1000);
}

export function benchEndToEnd(device: DeviceKind) {
  return async (o: BenchOptions): Promise<Figure> => {
    const ios = o.samples > 1 ? 400_000 : 20_000;
    await runOnce(device, ios / 4); // warm up
    const a: number[] = [], b: number[] = [];
    for (let i = 0; i < o.samples; i++) { a.push(await runOnce(device, ios)); b.push(await copyRate(o.sampleMs)); }
    const value = median(a), ref = median(b);
    return {
      name: `end-to-end local path, ${device} (4 KiB randread, iodepth 32, verify off, 32 MiB RAM disk)`,
      unit: "IOPS", value, reference: { name: "4 KiB memory.copy calls out of the same size of backend", value: ref },
      ratio: value / ref, samples: o.samples,
    };
  };
}
