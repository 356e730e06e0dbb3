// virtio-blk end to end: Card + VirtioBlkPci + the guest driver against a disk, both
// block sizes, split and packed rings, direct and indirect chains, several queues.
import { describe, it, expect } from "vitest";
import { rig, drain, one, pattern, diskBytes, raw, same, type RigOptions } from "./setup.js";
import { BlkOp } from "../../host/guest/driver.js";
import * as V from "../../assembly/virtio/layout.js";

const variants: [string, RigOptions][] = [
  ["split, indirect, 512", { blockSize: 512 }],
  ["split, direct, 4096", { blockSize: 4096, indirect: false }],
  ["packed, indirect, 4096", { blockSize: 4096, packed: true }],
  ["packed, direct, 512", { blockSize: 512, packed: true, indirect: false }],
  ["split, host disk, 4096", { blockSize: 4096, hostDisk: true }],
];

describe.each(variants)("virtio-blk %s", (_name, o) => {
  it("writes a batch and reads it back", async () => {
    const r = await rig(o);
    const bs = r.drv.blockSize;
    expect(bs).toBe(o.blockSize);
    expect(r.drv.capacityBlocks).toBe((1 << 20) / bs);
    const n = 20, len = 2 * bs;
    const src = r.guest.alloc(n * len), dst = r.guest.alloc(n * len);
    const data = pattern(n * len, 11);
    r.guest.u8.set(data, src);
    for (let i = 0; i < n; i++) expect(r.drv.submit(BlkOp.WRITE, 3 * i, 2, src + i * len, i)).toBe(true);
    r.drv.kick();
    const w = drain(r, n);
    expect(w.map(([, s]) => s)).toEqual(new Array(n).fill(0));
    expect(w.map(([t]) => t).sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
    // on the disk, where the LBAs say
    for (let i = 0; i < n; i++) expect(same(diskBytes(r).subarray(3 * i * bs, 3 * i * bs + len), data.subarray(i * len, (i + 1) * len))).toBe(true);
    for (let i = 0; i < n; i++) r.drv.submit(BlkOp.READ, 3 * i, 2, dst + i * len, 100 + i);
    r.drv.kick();
    expect(drain(r, n).every(([, s]) => s === 0)).toBe(true);
    expect(same(r.guest.u8.subarray(dst, dst + n * len), data)).toBe(true);
    expect(r.card.errors()).toEqual({});
    // one interrupt per service call, not per request
    expect(r.drv.irqs[1]).toBe(2);
  });

  it("flushes, discards and writes zeroes", async () => {
    const r = await rig(o);
    const bs = r.drv.blockSize;
    const buf = r.guest.alloc(8 * bs);
    r.guest.u8.fill(0xab, buf, buf + 8 * bs);
    expect(one(r, () => r.drv.submit(BlkOp.WRITE, 0, 8, buf, 1))).toBe(0);
    expect(one(r, () => r.drv.submit(BlkOp.FLUSH, 0, 0, 0, 2))).toBe(0);
    expect(one(r, () => r.drv.submit(BlkOp.DISCARD, 1, 2, 0, 3))).toBe(0);
    expect(one(r, () => r.drv.submit(BlkOp.WRITE_ZEROES, 5, 1, 0, 4))).toBe(0);
    const disk = diskBytes(r);
    const byBlock = [...Array(8).keys()].map((b) => disk[b * bs + bs - 1]);
    expect(byBlock).toEqual([0xab, 0, 0, 0xab, 0xab, 0, 0xab, 0xab]);
    expect(r.card.errors()).toEqual({});
  });

  it("answers GET_ID with the 20-byte serial", async () => {
    const r = await rig(o);
    const buf = r.guest.alloc(20);
    r.guest.u8.fill(0xee, buf, buf + 20);
    expect(one(r, () => r.drv.getId(buf, 20, 9))).toBe(0);
    const id = new TextDecoder().decode(r.guest.u8.subarray(buf, buf + 20)).replace(/\0+$/, "");
    expect(id).toBe(`wasm-dpu-vblk-${r.dev.func}`);
    expect(r.guest.u8[buf + 19]).toBe(0);
  });
});

describe("virtio-blk queues and limits", () => {
  it("serves several queues (MQ), each with its own MSI-X vector", async () => {
    const r = await rig({ queues: 3 });
    expect(r.drv.queues.length).toBe(3);
    const buf = r.guest.alloc(512 * 3);
    for (let q = 0; q < 3; q++) r.drv.submitOn(q, BlkOp.READ, q, 1, buf + q * 512, q);
    r.drv.kick();
    expect(drain(r, 3).length).toBe(3);
    expect(r.drv.irqs).toEqual([0, 1, 1, 1]);
    expect(r.dev.notifies).toBe(3);
  });

  it("rejects a transfer that does not start on a 4096-byte block (IOERR, counted)", async () => {
    const r = await rig({ blockSize: 4096 });
    const buf = r.guest.alloc(4096);
    const req = raw(r, { type: V.BLK_T_IN, sector: 1n, data: [{ addr: buf, len: 4096, write: true }] });
    r.drv.kick();
    expect(drain(r, 1)).toEqual([[1000 + req.id, V.BLK_S_IOERR]]);
    expect(r.card.errors()).toEqual({ err_virtio_misaligned: 1 });
  });

  it("stops on the poll budget and comes back by itself on the next poll", async () => {
    const r = await rig();
    const buf = r.guest.alloc(40 * 512);
    for (let i = 0; i < 40; i++) r.drv.submit(BlkOp.READ, i, 1, buf + i * 512, i);
    r.drv.kick();
    expect(r.dev.notifies).toBe(1);
    expect(r.card.poll(16)).toBe(16);
    expect(r.card.poll(16)).toBe(16);
    expect(r.card.poll(16)).toBe(8);
    expect(r.dev.notifies).toBe(1);
    expect(r.drv.reap(() => {})).toBe(40);
  });

  it("reports capacity in 512-byte sectors and the offered limits in device config", async () => {
    const r = await rig({ blockSize: 4096 });
    const rd = (off: number, n: 1 | 2 | 4) => r.dev.mmioRead(0x2000 + off, n);
    expect(rd(0, 4)).toBe((1 << 20) / 512);
    expect(rd(0x0c, 4)).toBe(V.SEG_MAX);
    expect(rd(0x14, 4)).toBe(4096);
    expect(rd(0x28, 4)).toBe(1);
  });
});
