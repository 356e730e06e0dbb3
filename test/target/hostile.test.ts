// Hostile capsules against a storage controller (the test plays the NIC): random opcodes,
// queues, NSIDs, LBAs, lengths, SGL types, keys, addresses and capsule lengths, seeded. The
// controller never throws, answers every capsule exactly once with its CID, names only its
// staging window, and ends with nothing held; reads that succeed return the disk's bytes.
import { describe, it, expect } from "vitest";
import { setup, N, M, type Setup } from "./rings.js";
import { capsule, connect, propertySet, CC_ENABLE, S, F } from "./nvmf.js";
import * as R from "../../assembly/nvme/regs.js";

const KEY = 0x77, VA = 0x4000_0000n, HOST = 256 * 1024;
// Well-formed reads land in a region of their own (no other command names its key), one slot
// each, from blocks no other command can change (every random LBA is at or above FIXED).
const KEY2 = 0x99, VA2 = 0x8000_0000n, SLOT = 8192, SLOTS = 64, FIXED = 64;
const ADMIN = 3, IO = 4, STRANGER = 9;

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  return { next, int: (n: number) => next() % n, pick: <T>(a: readonly T[]) => a[next() % a.length]! };
}

function settle(s: Setup, rounds = 200): void {
  for (let i = 0; i < rounds; i++) {
    s.ctrl.step();
    if (s.nic.pending().length === 0 && s.ctrl.inFlight() === 0) return;
    s.nic.serve(Infinity, (w) => w.type !== N.NicWqeType.RESPONSE && !s.nic.inHost(w));
  }
}

describe("hostile capsules", () => {
  for (const [seed, protection, mtu] of [[1, false, 512], [2, true, 4096], [3, true, 1024]] as const) {
    it(`seed ${seed}: 3000 random capsules, protection ${protection}, MTU ${mtu}`, async () => {
      const s = await setup({ protection, mtu, bs: 512, bytes: 1 << 20 });
      const host = new Uint8Array(HOST), reads = new Uint8Array(SLOT * SLOTS);
      s.nic.region(KEY, VA, host);
      s.nic.region(KEY2, VA2, reads);
      for (const [q, c] of [[ADMIN, connect(1, 0, 31, F.CNTLID_DYNAMIC)], [ADMIN, propertySet(2, R.NVME_REG_CC, CC_ENABLE)], [IO, connect(3, 1, 31, 1)]] as const) {
        s.nic.submit(q, c);
        settle(s);
      }
      expect(s.nic.responses.map((r) => r.cqe.status)).toEqual([0, 0, 0]);
      s.disk.set(Array.from({ length: FIXED * 512 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));
      const r = rng(seed);
      const blocks = s.disk.length / 512;
      const sent: { q: number; cid: number }[] = [];
      const good: { cid: number; slba: number; nlb: number; slot: number }[] = [];
      const wellFormed = (n: number): Uint8Array | null => {
        const cid = 0x8000 | n; // the random commands below use CIDs under 8000h
        if (r.int(4) === 0 && good.length < SLOTS) {
          const nlb = 1 + r.int(16), slba = r.int(FIXED - nlb + 1), slot = good.length;
          good.push({ cid, slba, nlb, slot });
          return capsule({ opc: S.IO_READ, cid, nsid: 1, slba: BigInt(slba), cdw12: nlb - 1, sgl: { keyed: true, addr: VA2 + BigInt(slot * SLOT), len: nlb * 512, key: KEY2 } });
        }
        if (r.int(4) === 0) {
          const nlb = 1 + r.int(64), slba = FIXED + r.int(blocks - FIXED - nlb);
          return capsule({ opc: S.IO_WRITE, cid, nsid: 1, slba: BigInt(slba), cdw12: nlb - 1, sgl: { keyed: true, addr: VA + BigInt(r.int(HOST - nlb * 512)), len: nlb * 512, key: KEY } });
        }
        return null;
      };
      for (let n = 0; n < 3000; n++) {
        const wf = wellFormed(n);
        if (wf) {
          s.nic.submit(IO, wf);
          sent.push({ q: IO, cid: wf[2]! | (wf[3]! << 8) });
          continue;
        }
        const q = r.pick([IO, IO, IO, ADMIN, STRANGER]);
        const opc = r.pick([S.IO_READ, S.IO_WRITE, S.IO_FLUSH, S.IO_WRITE_ZEROES, S.IO_DSM, S.ADM_IDENTIFY, S.ADM_GET_FEATURES, S.ADM_SET_FEATURES, 0x18, F.OPC_FABRICS, r.int(256)]);
        const nlb = r.pick([0, 1, 7, 255, r.int(0x10000)]);
        const xfer = (nlb + 1) * 512;
        const len = r.pick([xfer, xfer, 4096, r.int(1 << 24), 0]);
        const addr = r.pick([VA, VA + BigInt(r.int(HOST)), VA - 4096n, 0n, VA + BigInt(HOST) - 512n]);
        const id = r.pick([F.SGL_ID_KEYED, F.SGL_ID_KEYED, F.SGL_ID_KEYED_INV, F.SGL_ID_INCAPSULE, 0x00, 0x02, 0x30, r.int(256)]);
        const data = r.int(3) === 0 ? new Uint8Array(r.pick([0, 16, 512, 1024, 4096])) : undefined;
        const cid = r.int(0x8000);
        const cap = capsule({
          opc, cid, fctype: r.pick([F.FCTYPE_CONNECT, F.FCTYPE_PROPERTY_GET, F.FCTYPE_PROPERTY_SET, 0x05]),
          nsid: r.pick([1, 1, 0, 2, 0xffffffff]), slba: BigInt(r.pick([FIXED, FIXED + r.int(blocks - FIXED), blocks - 1, blocks, 2 ** 40])),
          cdw10: undefined, cdw11: r.next(), cdw12: nlb, fuse: r.int(10) === 0 ? 1 : 0, psdt: r.int(10) === 0 ? 0 : 1,
          sgl: id === F.SGL_ID_INCAPSULE ? { inline: true, off: r.pick([0, 0, 16, 4096]), len } : { raw: id, len },
          data,
          patch: (dv) => {
            if (id === F.SGL_ID_KEYED || id === F.SGL_ID_KEYED_INV) {
              dv.setBigUint64(F.SQE_SGL1, addr, true);
              dv.setUint8(F.SQE_SGL1 + 8, len & 0xff); dv.setUint8(F.SQE_SGL1 + 9, (len >>> 8) & 0xff); dv.setUint8(F.SQE_SGL1 + 10, (len >>> 16) & 0xff);
              dv.setUint32(F.SQE_SGL1 + 11, r.pick([KEY, KEY, KEY + 1]), true);
              dv.setUint8(F.SQE_SGL1 + 15, id);
            }
            if (opc === S.ADM_IDENTIFY) dv.setUint32(S.SQE_CDW10, r.pick([0, 1, 2, 3, 0x13]), true);
            if (opc === S.ADM_GET_FEATURES || opc === S.ADM_SET_FEATURES) dv.setUint32(S.SQE_CDW10, r.pick([7, 0x0b, 0x0f, 6, 0x80]), true);
            // Ranges named by a keyed SGL are host bytes (maybe data read from the fixed blocks): hints only then.
            if (opc === S.IO_DSM && id !== F.SGL_ID_INCAPSULE) dv.setUint32(S.SQE_CDW11, dv.getUint32(S.SQE_CDW11, true) & ~S.DSM_AD, true);
          },
        });
        const capLen = r.int(20) === 0 ? r.int(64) : cap.length;
        s.nic.submit(q, cap, capLen);
        sent.push({ q, cid: capLen >= 4 ? cid : cap[2]! | (cap[3]! << 8) });
        if (r.int(8) === 0) {
          expect(() => s.ctrl.step()).not.toThrow();
          s.nic.serve(r.int(64), (w) => w.type !== N.NicWqeType.RESPONSE && !s.nic.inHost(w));
        }
      }
      expect(() => settle(s)).not.toThrow();
      const got = s.nic.responses.slice(3);
      expect(got.length).toBe(sent.length);
      const key = (q: number, cid: number) => q * 0x10000 + cid;
      expect(got.map((g) => key(g.qpn, g.cqe.cid)).sort((a, b) => a - b)).toEqual(sent.map((x) => key(x.q, x.cid)).sort((a, b) => a - b));
      // Every well-formed read succeeded and brought the blocks it named.
      for (const g of good) {
        expect(got.filter((x) => x.qpn === IO && x.cqe.cid === g.cid).map((x) => x.cqe.status)).toEqual([0]);
        expect(Buffer.compare(reads.subarray(g.slot * SLOT, g.slot * SLOT + g.nlb * 512), s.disk.subarray(g.slba * 512, (g.slba + g.nlb) * 512))).toBe(0);
      }
      expect(good.length).toBe(SLOTS);
      expect(s.nic.wqes.filter((w) => w.type === N.NicWqeType.READ).length).toBeGreaterThan(100); // keyed writes reached the RDMA READ
      expect(s.ctrl.stats()).toMatchObject({ inFlight: 0, waiting: 0, stageInUse: 0 });
      expect(s.nic.wqes.every((w) => [ADMIN, IO, STRANGER].includes(w.qpn) && w.stageOff + (w.type === N.NicWqeType.READ ? w.total : w.len) <= M.NIC_STAGE_SIZE)).toBe(true);
      const ok = got.filter((g) => g.cqe.status === 0).length;
      expect(ok).toBeGreaterThan(100); // the generator reaches the success paths too
      expect(Object.keys(s.ctrl.stats().errors).length).toBeGreaterThan(8); // and many error paths
    });
  }
});
