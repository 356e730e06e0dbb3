// The command capsules a VM's requests become, byte for byte as NVMe-oF 1.1 §7.3 and NVMe base
// 2.0 §4.1.2 / §4.2 say: opcode, PSDT = SGL, a CID that names the request, NSID, SLBA, NLB
// (0's based), and a keyed SGL data block {address, 24-bit length, key, 0x40} naming the
// guest's buffer by its card offset, or in-capsule data (0x01) for small writes and DSM ranges.
import { describe, it, expect, beforeEach } from "vitest";
import * as M from "../../assembly/memmap.js";
import { world, bringUp, vio, pattern, BlkOp, F, S, type World, type Capsule } from "./target.js";

let w: World, key: number;
const last = (): Capsule => w.target.capsules[w.target.capsules.length - 1]!;
const cdw = (c: Capsule, off: number) => new DataView(c.bytes.buffer).getUint32(off, true);

beforeEach(async () => {
  w = await world({ blockSize: 512, blocks: 8192 });
  bringUp(w, { mtu: 4096 }); // in-capsule data rides one SEND packet either way
  key = w.host.dv.getUint32(M.GUEST_TABLE_BASE + 0 * M.GUEST_ENTRY_SIZE + F.GUEST_NVMF_KEY_OFF, true); // guest 0's key
});

describe("NVMe-oF command capsules from VM requests", () => {
  it("a read is a Read capsule with a keyed SGL on the guest's buffer: addr = card offset, length, key, 0x40", () => {
    const g = w.host.guests[0]!, gpa = g.alloc(8192);
    expect(vio(w, BlkOp.READ, 100, 16, gpa)).toBe(0);
    const c = last();
    expect(c.bytes.length).toBe(S.SQE_SIZE);
    expect(c.qid).toBe(1);
    expect(c.opc).toBe(S.IO_READ);
    expect(c.psdt).toBe(1);
    expect(cdw(c, 0) & 0x3ff00).toBe(0x4000); // FUSE 0, PSDT 01b
    expect(c.nsid).toBe(1);
    expect(c.slba).toBe(100n);
    expect(cdw(c, S.SQE_CDW12)).toBe(15); // NLB 0's based, nothing else in CDW12
    expect([c.sglAddr, c.sglLen, c.sglKey, c.sglId]).toEqual([BigInt(g.base + gpa), 8192, key, F.SGL_ID_KEYED]);
    expect(key).not.toBe(0);
  });

  it("a write larger than the in-capsule limit is a Write capsule with a keyed SGL (the target RDMA READs it)", () => {
    const g = w.host.guests[0]!, gpa = g.alloc(8192);
    expect(vio(w, BlkOp.WRITE, 7, 16, gpa)).toBe(0);
    const c = last();
    expect([c.opc, c.psdt, c.nsid, c.slba, c.nlb]).toEqual([S.IO_WRITE, 1, 1, 7n, 16]);
    expect([c.sglAddr, c.sglLen, c.sglKey, c.sglId]).toEqual([BigInt(g.base + gpa), 8192, key, F.SGL_ID_KEYED]);
    expect(c.bytes.length).toBe(S.SQE_SIZE);
  });

  it("a small write carries its data in the capsule: SGL data block, offset subtype (0x01), offset 0, its length", () => {
    const g = w.host.guests[0]!, gpa = g.alloc(4096);
    const data = pattern(2048, 3);
    g.u8.set(data, gpa);
    const before = w.host.counters().nvmf_incapsule_writes!;
    expect(vio(w, BlkOp.WRITE, 9, 4, gpa)).toBe(0);
    const c = last();
    expect([c.opc, c.psdt, c.slba, c.nlb]).toEqual([S.IO_WRITE, 1, 9n, 4]);
    expect(c.sglId).toBe(F.SGL_ID_INCAPSULE);
    expect(c.sglAddr).toBe(0n);
    expect(cdw(c, F.SQE_SGL1 + F.SGL_LEN)).toBe(2048);
    expect(c.bytes.length).toBe(S.SQE_SIZE + 2048);
    expect(Buffer.compare(c.bytes.subarray(S.SQE_SIZE), data)).toBe(0);
    expect(w.host.counters().nvmf_incapsule_writes).toBe(before + 1);
  });

  it("flush, write zeroes and discard: opcodes 00h, 08h, 09h (one deallocate range in the capsule)", () => {
    expect(vio(w, BlkOp.FLUSH, 0, 0, 0)).toBe(0);
    let c = last();
    expect([c.opc, c.psdt, c.nsid, c.sglId, c.sglLen, c.bytes.length]).toEqual([S.IO_FLUSH, 1, 1, F.SGL_ID_KEYED, 0, S.SQE_SIZE]);
    expect(vio(w, BlkOp.WRITE_ZEROES, 40, 24, 0)).toBe(0);
    c = last();
    expect([c.opc, c.slba, c.nlb, c.sglLen, c.bytes.length]).toEqual([S.IO_WRITE_ZEROES, 40n, 24, 0, S.SQE_SIZE]);
    expect(vio(w, BlkOp.DISCARD, 64, 32, 0)).toBe(0);
    c = last();
    expect(c.opc).toBe(S.IO_DSM);
    expect(cdw(c, S.SQE_CDW10)).toBe(0); // NR 0's based: one range
    expect(cdw(c, S.SQE_CDW11)).toBe(S.DSM_AD);
    expect([c.sglId, c.sglAddr, cdw(c, F.SQE_SGL1 + F.SGL_LEN)]).toEqual([F.SGL_ID_INCAPSULE, 0n, 16]);
    const r = new DataView(c.bytes.buffer, S.SQE_SIZE);
    expect([c.bytes.length, r.getUint32(0, true), r.getUint32(S.DSM_RANGE_NLB, true), r.getBigUint64(S.DSM_RANGE_SLBA, true)]).toEqual([S.SQE_SIZE + 16, 0, 32, 64n]);
  });

  it("each capsule in flight has its own CID; the low bits name a slot, the rest change on reuse", () => {
    const gpa = w.host.guests[0]!.alloc(4096);
    for (let i = 0; i < 3; i++) expect(vio(w, BlkOp.READ, i, 8, gpa)).toBe(0);
    const cids = w.target.capsules.slice(-3).map((c) => c.cid);
    expect(new Set(cids).size).toBe(3); // one slot reused one after another: a different CID each time
    expect(cids.map((c) => c & F.CID_SLOT_MASK)).toEqual([0, 0, 0]);
  });
});
