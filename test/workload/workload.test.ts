// The fio-like job: determinism, verify, error accounting, iodepth and batching.
import { describe, expect, it } from "vitest";
import { Prng } from "../../host/workload/prng.js";
import { Histogram, bucketOf, bucketRange } from "../../host/workload/histogram.js";
import { Job, type JobOptions } from "../../host/workload/job.js";
import { parseDuration, parseSize } from "../../host/workload/units.js";
import { MemoryBackend } from "../../host/backends/memory.js";
import { GuestRam } from "../../host/guest/ram.js";
import { BlkOp } from "../../host/guest/driver.js";
import { FakeDriver } from "./fake-driver.js";

describe("prng", () => {
  it("gives the same sequence for the same seed and another for another seed", () => {
    const a = new Prng(42), b = new Prng(42), c = new Prng(43);
    const sa = Array.from({ length: 64 }, () => a.next());
    expect(Array.from({ length: 64 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 64 }, () => c.next())).not.toEqual(sa);
    expect(sa.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)).toBe(true);
  });

  it("is xoshiro128**: the reference outputs from state {1, 2, 3, 4}", () => {
    const p = Prng.fromState(1, 2, 3, 4);
    expect([p.next(), p.next(), p.next()]).toEqual([11520, 0, 5927040]);
  });

  it("draws below(n) uniformly within [0, n)", () => {
    const p = new Prng(0);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) bins[p.below(10)]++;
    for (const b of bins) expect(Math.abs(b - 10_000)).toBeLessThan(500);
  });
});

describe("histogram", () => {
  it("reports percentiles within a bucket's width, and exact min/max/mean", () => {
    const h = new Histogram();
    for (let v = 1; v <= 100_000; v++) h.record(v);
    expect(h.count).toBe(100_000);
    expect(h.min).toBe(1);
    expect(h.max).toBe(100_000);
    expect(h.mean).toBe(50_000.5);
    for (const [p, want] of [[50, 50_000], [90, 90_000], [99, 99_000], [99.9, 99_900]] as const) {
      expect(Math.abs(h.percentile(p) - want) / want).toBeLessThan(1 / 32);
    }
  });

  it("is exact for small values and puts every value inside its bucket", () => {
    const h = new Histogram();
    [3, 3, 3, 7].forEach((v) => h.record(v));
    expect(h.percentile(50)).toBe(3);
    expect(h.percentile(99)).toBe(7);
    for (const v of [0, 1, 63, 64, 65, 127, 128, 1000, 123_456, 2 ** 31, 2 ** 33 + 5, 2 ** 45]) {
      const [low, width] = bucketRange(bucketOf(v));
      expect(v).toBeGreaterThanOrEqual(low);
      expect(v).toBeLessThan(low + width);
    }
  });
});

describe("units", () => {
  it("parses sizes and durations like fio", () => {
    expect(parseSize("4k")).toBe(4096);
    expect(parseSize("64M")).toBe(64 << 20);
    expect(parseSize("1G")).toBe(2 ** 30);
    expect(parseSize(512)).toBe(512);
    expect(parseDuration("5ms")).toBe(5e6);
    expect(parseDuration("2s")).toBe(2e9);
    expect(() => parseSize("4q")).toThrow(/not a size/);
    expect(() => parseDuration("5")).toThrow(/not a duration/);
  });
});

const MiB = 1 << 20;
function rig(diskBytes = 4 * MiB, maxInflight = 64) {
  const disk = new MemoryBackend(new Uint8Array(diskBytes), 4096);
  const ram = new GuestRam(0, new ArrayBuffer(8 * MiB), 0, 8 * MiB);
  return { disk, ram, drv: new FakeDriver(disk, ram, maxInflight) };
}
const opts = (o: Partial<JobOptions> = {}): JobOptions => ({ name: "j", rw: "randrw", rwmixread: 50, bs: 4096, iodepth: 8, number_ios: 4000, seed: 7, verify: true, ...o });

/** Drive a job to its end: one submit, one reap per round, 1 µs apart. */
function runJob(job: Job, rounds = Infinity, onRound?: () => void): void {
  let t = 0;
  for (let r = 0; r < rounds && !job.done; r++) {
    job.submit(t);
    t += 1000;
    job.reap(t);
    onRound?.();
  }
}

describe("job", () => {
  it("does number_ios IOs, split by rwmixread, and passes verify on a correct device", () => {
    const { ram, drv } = rig();
    const job = new Job(drv, ram, opts({ rwmixread: 70 }));
    runJob(job);
    const r = job.result();
    expect(r.read.ios + r.write.ios).toBe(4000);
    expect(r.read.ios / 4000).toBeGreaterThan(0.65);
    expect(r.read.ios / 4000).toBeLessThan(0.75);
    expect(r.read.bytes).toBe(r.read.ios * 4096);
    expect(r.errors).toBe(0);
    expect(r.verifyErrors).toBe(0);
    expect(r.read.lat.percentile(50)).toBe(1000);
  });

  it("catches a block corrupted behind the device's back", () => {
    const { disk, ram, drv } = rig(256 * 1024);
    const job = new Job(drv, ram, opts({ number_ios: 3000 }));
    runJob(job, 200);
    for (let u = 0; u < disk.blocks; u++) disk.bytes[u * 4096 + 100]! ^= 0x5a; // one byte in every block
    runJob(job);
    const r = job.result();
    expect(r.errors).toBe(0);
    expect(r.verifyErrors).toBeGreaterThan(0);
    expect(r.verifyDetail).toMatch(/byte 100 of the 4096-byte block/);
  });

  it("catches data from the wrong place: another block, or blocks swapped inside an IO", () => {
    const misdirect = (swap: (lba: number, n: number, buf: Uint8Array, disk: MemoryBackend) => void) => {
      const disk = new MemoryBackend(new Uint8Array(256 * 1024), 512);
      const ram = new GuestRam(0, new ArrayBuffer(MiB), 0, MiB);
      const drv = new FakeDriver(disk, ram);
      const job = new Job(drv, ram, opts({ number_ios: 2000, iodepth: 4 }));
      const read = disk.read.bind(disk);
      disk.read = (lba, dst) => { read(lba, dst); swap(lba, dst.length / 512, dst, disk); };
      runJob(job);
      return job.result().verifyErrors;
    };
    expect(misdirect(() => {})).toBe(0);
    // reads return the neighbouring 4 KiB (8 blocks of 512 bytes) whenever it holds written data
    expect(misdirect((lba, n, buf, disk) => {
      const next = disk.bytes.subarray((lba + n) * 512, (lba + 2 * n) * 512);
      if (next.length === buf.length && next.some((x) => x !== 0)) buf.set(next);
    })).toBeGreaterThan(0);
    // the first two 512-byte blocks of each read come back swapped
    expect(misdirect((_lba, _n, buf) => { const a = buf.slice(0, 512); buf.copyWithin(0, 512, 1024); buf.set(a, 512); })).toBeGreaterThan(0);
  });

  it("catches a device that completes reads without returning data", () => {
    const { ram, drv } = rig(256 * 1024);
    const job = new Job(drv, ram, opts({ rw: "randread", number_ios: 10 }));
    drv.reap = function (done) { // a broken device: says OK, moves nothing
      let n = 0;
      for (const [, , , , tag] of (this as any).published) { done(tag, 0); n++; }
      (this as any).published = [];
      return n;
    };
    runJob(job);
    expect(job.result().verifyErrors).toBe(10);
  });

  it("checks never-written blocks for zeros only on a zeroed device", () => {
    const reads = (zeroed: boolean) => {
      const { disk, ram, drv } = rig(256 * 1024);
      disk.bytes.fill(0x11); // an old image
      const job = new Job(drv, ram, opts({ rw: "randread", number_ios: 20, zeroed }));
      runJob(job);
      return job.result().verifyErrors;
    };
    expect(reads(true)).toBe(20);
    expect(reads(false)).toBe(0);
  });

  it("counts failed IOs as errors, apart from verify errors", () => {
    const { ram, drv } = rig(64 * 1024);
    drv.failLba = 3;
    drv.failStatus = 2;
    const job = new Job(drv, ram, opts({ number_ios: 500, iodepth: 4 }));
    runJob(job);
    const r = job.result();
    expect(r.errors).toBeGreaterThan(0);
    expect(r.firstError).toBe(2);
    expect(r.read.ios + r.write.ios + r.errors).toBe(500);
    expect(r.verifyErrors).toBe(0);
  });

  it("is deterministic: same seed, same IOs; another seed, other IOs", () => {
    const trace = (seed: number) => {
      const { ram, drv } = rig();
      const seen: number[] = [];
      const submit = drv.submit.bind(drv);
      drv.submit = (op, lba, n, gpa, tag) => { seen.push(op, lba); return submit(op, lba, n, gpa, tag); };
      runJob(new Job(drv, ram, opts({ seed, number_ios: 500 })));
      return seen;
    };
    expect(trace(11)).toEqual(trace(11));
    expect(trace(11)).not.toEqual(trace(12));
  });

  it("keeps iodepth IOs in flight, kicks once per batch, and honours a full driver", () => {
    const { ram, drv } = rig(4 * MiB, 5);
    const job = new Job(drv, ram, opts({ iodepth: 5, number_ios: 100, verify: false, rw: "read" }));
    expect(job.submit(0)).toBe(5);
    expect(drv.kicks).toBe(1);
    expect(job.inflight).toBe(5);
    expect(job.submit(0)).toBe(0); // nothing free: no kick either
    expect(drv.kicks).toBe(1);
    job.reap(10);
    runJob(job);
    expect(job.result().read.ios).toBe(100);
    expect(drv.kicks).toBe(20);
    expect(() => new Job(drv, ram, opts({ iodepth: 6 }))).toThrow(/iodepth 6 outside 1\.\.5/);
  });

  it("reads sequentially with rw=read and stops on runtime", () => {
    const { ram, drv } = rig();
    const lbas: number[] = [];
    const submit = drv.submit.bind(drv);
    drv.submit = (op, lba, n, gpa, tag) => { lbas.push(lba); expect(op).toBe(BlkOp.READ); return submit(op, lba, n, gpa, tag); };
    const job = new Job(drv, ram, opts({ rw: "read", iodepth: 2, number_ios: undefined, runtime: 10_000 }));
    runJob(job);
    expect(lbas.slice(0, 6)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(lbas.length).toBe(20); // 10 rounds of 1 µs, 2 IOs each
  });
});
