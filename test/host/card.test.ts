import { describe, it, expect } from "vitest";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { Card, FuncType } from "../../host/card.js";
import { loadFirmware } from "../../host/loader.js";
import * as M from "../../assembly/memmap.js";

describe("card memory and the firmware boundary", () => {
  it("gives each card its own memory, laid out by the one memory map", async () => {
    const a = await Card.create({ guests: [{ ramBytes: 1 << 20 }, { ramBytes: 2 << 20 }], disks: [{ kind: "memory", bytes: 1 << 20, blockSize: 512 }] });
    const b = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [{ kind: "memory", bytes: 1 << 20, blockSize: 4096 }] });
    expect(a.memory).not.toBe(b.memory);
    // Regions follow each other, page aligned, after the fixed part of the map.
    const [d] = a.layout.disks;
    const [g0, g1] = a.guests;
    expect(d!.base).toBeGreaterThanOrEqual(M.CARD_FIXED_END);
    expect(g0!.base).toBe(d!.base + d!.size);
    expect(g1!.base).toBe(g0!.base + g0!.size);
    expect(a.memory.buffer.byteLength).toBe(g1!.base + g1!.size);
    // The firmware sees the same windows the host placed.
    expect(a.dv.getUint32(M.GUEST_TABLE_BASE + 1 * M.GUEST_ENTRY_SIZE + M.GUEST_BASE_OFF, true)).toBe(g1!.base);
    expect(a.dv.getUint32(M.GUEST_TABLE_BASE + 1 * M.GUEST_ENTRY_SIZE + M.GUEST_SIZE_OFF, true)).toBe(2 << 20);
    // Writing one card's guest RAM leaves the other's alone.
    a.guests[0]!.u8.fill(7);
    expect(b.guests[0]!.u8.every((x) => x === 0)).toBe(true);
  });

  it("records a doorbell without calling the firmware, and poll() consumes it", async () => {
    const c = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [{ kind: "memory", bytes: 1 << 20, blockSize: 512 }] });
    const f = c.addFunction(FuncType.VIRTIO_BLK, 0, 0, 2);
    const before = c.counters().polls;
    c.doorbell(f, 1);
    expect(c.counters().polls).toBe(before);
    expect(c.dv.getUint32(M.DOORBELL_BASE + f * 4, true)).toBe(0b10);
    c.poll();
    expect(c.counters().polls).toBe(before + 1);
    expect(c.dv.getUint32(M.DOORBELL_BASE + f * 4, true)).toBe(0);
  });

  it("rejects configurations that cannot be laid out, naming the problem", async () => {
    await expect(Card.create({ guests: [{ ramBytes: 3 * 2 ** 30 }, { ramBytes: 2 ** 30 }], disks: [] })).rejects.toThrow(/4 GiB/);
    await expect(Card.create({ guests: [], disks: [{ kind: "memory", bytes: 1000, blockSize: 512 }] })).rejects.toThrow(/memory disk/);
    const c = await Card.create({ guests: [{ ramBytes: 1 << 16 }], disks: [{ kind: "memory", bytes: 1 << 16, blockSize: 512 }] });
    expect(() => c.addFunction(FuncType.NVME, 3, 0, 1)).toThrow(/no guest 3/);
    expect(() => c.guests[0]!.alloc(1 << 20)).toThrow(/out of RAM/);
  });

  it("loads the firmware over HTTP, the way a browser does", async () => {
    const wasm = readFileSync(new URL("../../build/release.wasm", import.meta.url));
    const server = createServer((req, res) => {
      if (req.url === "/fw.wasm") { res.writeHead(200, { "content-type": "application/wasm" }); res.end(wasm); }
      else { res.writeHead(404); res.end(); }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const mod = await loadFirmware(`http://127.0.0.1:${port}/fw.wasm`);
      const c = await Card.create({ guests: [{ ramBytes: 1 << 16 }], disks: [] }, mod);
      expect(c.poll()).toBe(0);
      await expect(loadFirmware(`http://127.0.0.1:${port}/missing.wasm`)).rejects.toThrow(/HTTP 404/);
    } finally {
      server.close();
    }
  });
});

describe("host-IO ring", () => {
  it("hands requests for a host backend to the host and completes them on the next poll", async () => {
    const { MemoryBackend } = await import("../../host/backends/memory.js");
    const bytes = new Uint8Array(64 * 4096);
    for (let i = 0; i < bytes.length; i += 4096) bytes.fill(i / 4096 + 1, i, i + 4096);
    const backend = new MemoryBackend(bytes, 4096); // a backend outside card memory: served by the host
    const c = await Card.create({ guests: [{ ramBytes: 1 << 16 }], disks: [{ kind: "host", backend }] });
    const dst = c.guests[0]!.base;
    expect(c.fw.benchDataPath(0, dst, 1, 4096, 1, 5)).toBe(1);
    expect(c.inFlight()).toBe(1); // posted, not yet served
    expect(c.counters().hostio_posted).toBe(1);
    c.poll(); // host serves after the firmware's poll
    c.poll(); // firmware reaps the completion
    expect(c.inFlight()).toBe(0);
    expect(c.counters().hostio_completed).toBe(1);
    // The block the firmware chose (xorshift of the seed) arrived in guest RAM.
    let x = 5; x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    expect(c.u8[dst]).toBe((x % 64) + 1);
    expect(c.u8[dst + 4095]).toBe((x % 64) + 1);
  });
});

describe("debug firmware", () => {
  it("WASM_DPU_FIRMWARE=debug runs the same scenario on build/debug.wasm with assertions on", () => {
    const cli = new URL("../../dist/cli.js", import.meta.url).pathname;
    const run = (env: Record<string, string>) => execFileSync(process.execPath, [cli, "run", "--ios", "3000", "--json", "--no-wall"], { env: { ...process.env, ...env }, encoding: "utf8" });
    const debug = JSON.parse(run({ WASM_DPU_FIRMWARE: "debug" }));
    const release = JSON.parse(run({}));
    expect(debug.ok).toBe(true);
    expect([debug.firmware.variant, release.firmware.variant]).toEqual(["debug", "release"]);
    // Same results otherwise: the variants differ in checks, not in behaviour.
    delete debug.firmware.variant; delete release.firmware.variant;
    expect(debug).toEqual(release);
  });
});
