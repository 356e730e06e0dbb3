// Both backends through one table: what a front end relies on from any disk.
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BlockBackend } from "../../host/backends/types.js";
import { MemoryBackend } from "../../host/backends/memory.js";
import { FileBackend } from "../../host/backends/file.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wasm-dpu-backends-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const MiB = 1 << 20;
let n = 0;
const makers: [string, (bytes: number, bs: number) => BlockBackend][] = [
  ["memory", (bytes, bs) => new MemoryBackend(new Uint8Array(bytes), bs)],
  ["file", (bytes, bs) => new FileBackend({ path: path.join(dir, `disk${n++}.img`), bytes, blockSize: bs })],
];

function pattern(len: number, salt: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + salt) & 0xff || 1;
  return b;
}

describe.each(makers)("%s backend", (_name, make) => {
  describe.each([512, 4096])("%i-byte blocks", (bs) => {
    it("reads back what was written, and zeros where nothing was", () => {
      const d = make(MiB, bs);
      expect(d.blocks).toBe(MiB / bs);
      const data = pattern(3 * bs, 7);
      d.write(5, data);
      const out = new Uint8Array(5 * bs);
      d.read(4, out);
      expect(out.subarray(0, bs).every((x) => x === 0)).toBe(true);
      expect(out.subarray(bs, 4 * bs)).toEqual(data);
      expect(out.subarray(4 * bs).every((x) => x === 0)).toBe(true);
      d.close();
    });

    it("discard and write-zeroes leave zeros, in the middle and at the end of the disk", () => {
      const d = make(MiB, bs);
      const last = d.blocks - 4;
      d.write(10, pattern(4 * bs, 1));
      d.write(last, pattern(4 * bs, 2));
      d.discard(11, 2);
      d.writeZeroes(last + 1, 3);
      const mid = new Uint8Array(4 * bs);
      d.read(10, mid);
      expect(mid.subarray(0, bs)).toEqual(pattern(4 * bs, 1).subarray(0, bs));
      expect(mid.subarray(bs, 3 * bs).every((x) => x === 0)).toBe(true);
      expect(mid.subarray(3 * bs)).toEqual(pattern(4 * bs, 1).subarray(3 * bs));
      const tail = new Uint8Array(4 * bs);
      d.read(last, tail);
      expect(tail.subarray(0, bs)).toEqual(pattern(4 * bs, 2).subarray(0, bs));
      expect(tail.subarray(bs).every((x) => x === 0)).toBe(true);
      d.close();
    });

    it("flushes, and refuses I/O outside the disk with a clear error", () => {
      const d = make(MiB, bs);
      d.write(0, pattern(bs, 3));
      expect(() => d.flush()).not.toThrow();
      expect(() => d.read(d.blocks, new Uint8Array(bs))).toThrow(/outside 0\.\./);
      expect(() => d.write(d.blocks - 1, new Uint8Array(2 * bs))).toThrow(/outside 0\.\./);
      expect(() => d.discard(-1, 1)).toThrow(RangeError);
      d.close();
    });
  });

  it("rejects a size that is not a whole number of blocks", () => {
    expect(() => make(4096 + 512, 4096)).toThrow(/4096/);
  });
});

describe("file backend", () => {
  it("is sparse after creation and keeps data across reopen", () => {
    const p = path.join(dir, "sparse.img");
    const d = new FileBackend({ path: p, bytes: 64 * MiB, blockSize: 4096 });
    expect(d.created).toBe(true);
    const st = fs.statSync(p);
    expect(st.size).toBe(64 * MiB);
    expect(st.blocks * 512).toBeLessThan(MiB); // stat.blocks counts 512-byte units
    d.write(3, pattern(4096, 9));
    d.flush();
    d.close();
    const again = new FileBackend({ path: p, blockSize: 4096, create: false });
    expect(again.blocks).toBe(16384);
    expect(again.created).toBe(false); // old contents: not known to be zeros
    const out = new Uint8Array(4096);
    again.read(3, out);
    expect(out).toEqual(pattern(4096, 9));
    again.close();
  });

  it("gives the tail back to the file system when discarding up to the end", () => {
    const p = path.join(dir, "tail.img");
    const d = new FileBackend({ path: p, bytes: 8 * MiB, blockSize: 4096 });
    d.write(1024, pattern(4 * MiB, 5));
    d.flush();
    const written = fs.statSync(p).blocks;
    d.discard(1024, 1024);
    const after = fs.statSync(p);
    expect(after.size).toBe(8 * MiB);
    expect(after.blocks).toBeLessThan(written);
    d.close();
  });

  it("names the path and the problem", () => {
    expect(() => new FileBackend({ path: path.join(dir, "no/such/dir/x.img"), bytes: MiB, blockSize: 512 })).toThrow(/no\/such\/dir\/x\.img: cannot open \(ENOENT\)/);
    expect(() => new FileBackend({ path: path.join(dir, "bs.img"), bytes: MiB, blockSize: 1024 })).toThrow(/block size 1024 is not 512 or 4096/);
    expect(() => new FileBackend({ path: path.join(dir, "missing.img"), blockSize: 512, create: false })).toThrow(/cannot open \(ENOENT\)/);
    const small = path.join(dir, "small.img");
    fs.writeFileSync(small, new Uint8Array(4096));
    expect(() => new FileBackend({ path: small, bytes: 1024, blockSize: 512 })).toThrow(/larger than the requested 1024/);
  });
});
