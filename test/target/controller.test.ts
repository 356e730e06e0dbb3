// The storage controller against its NIC rings (the test plays the NIC, test/target/rings.ts):
// Fabrics Connect / Property Get / Set, Identify, Features, Read / Write / Flush / Write
// Zeroes / DSM with keyed SGLs and in-capsule data, error statuses, staging and send queue
// back-pressure, protection information, events.
import { describe, it, expect } from "vitest";
import { setup, settle, N, M, type Setup } from "./rings.js";
import { capsule, connect, propertyGet, propertySet, pattern, CC_ENABLE, SUBNQN, S, F } from "./nvmf.js";
import * as R from "../../assembly/nvme/regs.js";
import { crc16 } from "../nic/nic-setup.js";
import { StageAllocator } from "../../host/target/staging.js";

const ADMIN_QP = 3, IO_QP = 4;
const KEY = 0x1234, VA = 0x7000_0000n;

/** Submit one capsule, run to quiescence, return its response. */
function exec(s: Setup, qpn: number, cap: Uint8Array, len?: number) {
  const before = s.nic.responses.length;
  s.nic.submit(qpn, cap, len);
  settle(s);
  expect(s.nic.responses.length).toBe(before + 1);
  return s.nic.responses[before]!.cqe;
}

/** Admin queue connected and enabled; returns the CNTLID. */
function adminUp(s: Setup, qpn = ADMIN_QP): number {
  const r = exec(s, qpn, connect(1, 0, 31, F.CNTLID_DYNAMIC));
  expect(r.status).toBe(0);
  expect(exec(s, qpn, propertySet(2, R.NVME_REG_CC, CC_ENABLE)).status).toBe(0);
  return r.dw0;
}

function ioUp(s: Setup, cntlid: number, qid = 1, qpn = IO_QP): void {
  expect(exec(s, qpn, connect(1, qid, 31, cntlid)).status).toBe(0);
}

async function ready(o: Parameters<typeof setup>[0] = {}) {
  const s = await setup(o);
  const host = new Uint8Array(256 * 1024);
  s.nic.region(KEY, VA, host);
  const cntlid = adminUp(s);
  ioUp(s, cntlid);
  return { s, host, cntlid };
}

const rw = (opc: number, cid: number, slba: number, nlb: number, sgl: Parameters<typeof capsule>[0]["sgl"], data?: Uint8Array) =>
  capsule({ opc, cid, nsid: 1, slba: BigInt(slba), cdw12: nlb - 1, sgl, data });
/** Byte-exact comparison without a deep-equal over every element (first difference, or -1). */
const diff = (a: Uint8Array, b: Uint8Array) => (a.length !== b.length ? -2 : Buffer.compare(a, b) === 0 ? -1 : a.findIndex((x, i) => x !== b[i]));
const keyed = (len: number, off = 0) => ({ keyed: true as const, addr: VA + BigInt(off), len, key: KEY });

describe("fabrics commands", () => {
  it("Connect on the admin queue allocates a controller ID and answers on the response capsule", async () => {
    const s = await setup();
    s.nic.submit(ADMIN_QP, connect(0x55, 0, 31, F.CNTLID_DYNAMIC));
    expect(s.ctrl.step()).toBe(1);
    expect(s.nic.doorbells).toBe(1);
    const [w] = s.nic.pending();
    expect(w).toMatchObject({ type: N.NicWqeType.RESPONSE, flags: N.NWF_SIGNALED, cid: 0x55, qpn: ADMIN_QP, len: 16 });
    s.nic.serve();
    const r = s.nic.responses[0]!.cqe;
    expect(r).toMatchObject({ cid: 0x55, status: 0, sqid: 0, phase: 0, dw0: 1 });
    expect(s.ctrl.stats().stageInUse).toBeGreaterThan(0); // held until the SENT event
    s.ctrl.step();
    expect(s.ctrl.stats().stageInUse).toBe(0);
    expect(s.ctrl.inFlight()).toBe(0);
    // a second association gets another ID
    expect(exec(s, IO_QP, connect(1, 0, 31, F.CNTLID_DYNAMIC)).dw0).toBe(2);
  });

  it("Property Get / Set: CAP, VS, CC.EN → CSTS.RDY, and bad properties", async () => {
    const s = await setup();
    exec(s, ADMIN_QP, connect(1, 0, 31, F.CNTLID_DYNAMIC));
    const cap = exec(s, ADMIN_QP, propertyGet(2, R.NVME_REG_CAP, true));
    expect(cap.status).toBe(0);
    expect(cap.dw0 & 0xffff).toBe(M.NIC_RECV_DEPTH - 1); // MQES, 0's based
    expect(cap.dw0 & R.NVME_CAP_CQR).toBeTruthy();
    expect(cap.dw1 & R.NVME_CAP_HI_CSS_NVM).toBeTruthy();
    expect(exec(s, ADMIN_QP, propertyGet(3, R.NVME_REG_VS, false)).dw0).toBe(R.NVME_VS_2_0);
    expect(exec(s, ADMIN_QP, propertyGet(4, R.NVME_REG_CSTS, false)).dw0 & R.NVME_CSTS_RDY).toBe(0);
    expect(exec(s, ADMIN_QP, propertySet(5, R.NVME_REG_CC, CC_ENABLE)).status).toBe(0);
    expect(exec(s, ADMIN_QP, propertyGet(6, R.NVME_REG_CSTS, false)).dw0 & R.NVME_CSTS_RDY).toBe(1);
    expect(exec(s, ADMIN_QP, propertyGet(7, R.NVME_REG_CC, false)).dw0).toBe(CC_ENABLE);
    for (const bad of [propertyGet(8, 0x40, false), propertyGet(9, R.NVME_REG_CAP, false), propertySet(10, R.NVME_REG_CSTS, 1)]) {
      expect(exec(s, ADMIN_QP, bad)).toMatchObject({ sct: 0, sc: 0x02, dnr: true });
    }
    // CC.EN = 0 drops RDY; a CC with the wrong entry sizes sets CFS instead of RDY
    exec(s, ADMIN_QP, propertySet(11, R.NVME_REG_CC, 0));
    exec(s, ADMIN_QP, propertySet(12, R.NVME_REG_CC, 1));
    expect(exec(s, ADMIN_QP, propertyGet(13, R.NVME_REG_CSTS, false)).dw0).toBe(R.NVME_CSTS_CFS);
  });

  it("Connect errors: I/O queue of an unknown controller, wrong subsystem or host NQN, bad SQSIZE, QID in use, format", async () => {
    const s = await setup();
    const cntlid = adminUp(s);
    const ip = (r: ReturnType<typeof exec>) => ({ sct: r.sct, sc: r.sc, dw0: r.dw0 });
    expect(ip(exec(s, 10, connect(1, 1, 31, cntlid + 7)))).toEqual({ sct: 1, sc: 0x82, dw0: (1 << 16) | F.CD_CNTLID });
    expect(ip(exec(s, 11, connect(1, 1, 31, cntlid, { subnqn: "nqn.other" })))).toEqual({ sct: 1, sc: 0x82, dw0: (1 << 16) | F.CD_SUBNQN });
    expect(ip(exec(s, 12, connect(1, 1, 31, cntlid, { hostnqn: "nqn.someone-else" })))).toEqual({ sct: 1, sc: 0x82, dw0: (1 << 16) | F.CD_HOSTNQN });
    expect(ip(exec(s, 13, connect(1, 1, 0, cntlid)))).toEqual({ sct: 1, sc: 0x82, dw0: F.CONN_SQSIZE });
    expect(ip(exec(s, 14, connect(1, 1, 64, cntlid)))).toEqual({ sct: 1, sc: 0x82, dw0: F.CONN_SQSIZE });
    expect(ip(exec(s, 15, connect(1, 0, 31, 5)))).toEqual({ sct: 1, sc: 0x82, dw0: (1 << 16) | F.CD_CNTLID });
    expect(exec(s, 16, connect(1, 0, 31, F.CNTLID_DYNAMIC, { recfmt: 1 }))).toMatchObject({ sct: 1, sc: 0x80 });
    expect(exec(s, 17, connect(1, 1, 31, cntlid)).status).toBe(0);
    expect(exec(s, 18, connect(1, 1, 31, cntlid))).toMatchObject({ sct: 1, sc: 0x81 }); // qid 1 taken
    expect(exec(s, 17, connect(2, 1, 31, cntlid))).toMatchObject({ sct: 1, sc: 0x81 }); // queue already connected
    expect(s.ctrl.stats().errors).toMatchObject({ connect_cntlid: 2, connect_subnqn: 1, connect_hostnqn: 1, connect_sqsize: 2 });
  });

  it("Connect data named by a keyed SGL is RDMA READ into staging first", async () => {
    const s = await setup();
    const host = new Uint8Array(4096);
    s.nic.region(KEY, VA, host);
    const { connectData } = await import("./nvmf.js");
    host.set(connectData(F.CNTLID_DYNAMIC));
    s.nic.submit(ADMIN_QP, connect(9, 0, 31, F.CNTLID_DYNAMIC, { sgl: keyed(F.CONN_DATA_SIZE) }));
    s.ctrl.step();
    expect(s.nic.pending().map((w) => w.type)).toEqual([N.NicWqeType.READ]);
    expect(s.nic.pending()[0]).toMatchObject({ len: F.CONN_DATA_SIZE, total: F.CONN_DATA_SIZE, rkey: KEY, raddr: VA });
    settle(s);
    expect(s.nic.responses[0]!.cqe).toMatchObject({ cid: 9, status: 0, dw0: 1 });
  });

  it("commands before Connect get Command Sequence Error; Property Get on an I/O queue is an invalid opcode", async () => {
    const s = await setup();
    expect(exec(s, 20, propertyGet(1, R.NVME_REG_VS, false))).toMatchObject({ sct: 0, sc: 0x0c, dnr: true });
    expect(exec(s, 20, rw(S.IO_READ, 2, 0, 1, keyed(512)))).toMatchObject({ sct: 0, sc: 0x0c });
    const cntlid = adminUp(s);
    ioUp(s, cntlid);
    expect(exec(s, IO_QP, propertyGet(3, R.NVME_REG_VS, false))).toMatchObject({ sct: 0, sc: 0x01 });
    expect(exec(s, ADMIN_QP, rw(S.IO_READ, 4, 0, 1, keyed(512)))).toMatchObject({ sct: 0, sc: 0x01 }); // 02h is Get Log Page on admin: not supported
  });
});

describe("admin commands", () => {
  it("Identify Controller: keyed SGL support, capsule sizes, strings, CNTLID, subsystem NQN, cut at the MTU", async () => {
    const { s, host, cntlid } = await ready();
    const r = exec(s, ADMIN_QP, capsule({ opc: S.ADM_IDENTIFY, cid: 7, cdw10: S.CNS_CONTROLLER, sgl: keyed(4096) }));
    expect(r.status).toBe(0);
    const types = s.nic.wqes.slice(-5).map((w) => N.NicWqeType[w.type]);
    expect(types).toEqual(["INITIAL", "INTERMEDIATE", "INTERMEDIATE", "TAIL", "RESPONSE"]);
    const dv = new DataView(host.buffer);
    expect(dv.getUint32(S.IDC_SGLS, true) & 0b101).toBe(0b101); // SGLs, keyed data blocks
    expect(dv.getUint16(S.IDC_CNTLID, true)).toBe(cntlid);
    expect(dv.getUint32(1792, true)).toBe((64 + F.INCAPSULE_MAX) / 16); // IOCCSZ
    expect(dv.getUint32(1796, true)).toBe(1); // IORCSZ
    expect(new TextDecoder().decode(host.subarray(S.IDC_MN, S.IDC_MN + S.IDC_MN_LEN)).trimEnd()).toBe("wasm-dpu NVMe-oF target");
    expect(host[S.IDC_MN + S.IDC_MN_LEN - 1]).toBe(0x20);
    expect(new TextDecoder().decode(host.subarray(768, 768 + SUBNQN.length))).toBe(SUBNQN);
    expect(host[S.IDC_MDTS]).toBe(5);
    expect(host[S.IDC_SQES]).toBe(0x66);
  });

  it("Identify Namespace (size, LBA format; metadata 8 and DPS Type 1 with protection) and the active namespace list", async () => {
    for (const protection of [false, true]) {
      const { s, host } = await ready({ protection, bs: 4096, bytes: 1 << 21 });
      expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_IDENTIFY, cid: 1, nsid: 1, cdw10: S.CNS_NAMESPACE, sgl: keyed(4096) })).status).toBe(0);
      const dv = new DataView(host.buffer);
      expect(dv.getBigUint64(S.IDN_NSZE, true)).toBe(512n);
      const lbaf = dv.getUint32(S.IDN_LBAF0, true);
      expect((lbaf >>> 16) & 0xff).toBe(12);
      expect(lbaf & 0xffff).toBe(protection ? 8 : 0);
      expect(host[29]! & 7).toBe(protection ? 1 : 0); // DPS
      expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_IDENTIFY, cid: 2, nsid: 2, cdw10: S.CNS_NAMESPACE, sgl: keyed(4096) }))).toMatchObject({ sc: 0x0b });
      host.fill(0xee);
      expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_IDENTIFY, cid: 3, cdw10: S.CNS_ACTIVE_NS_LIST, sgl: keyed(4096) })).status).toBe(0);
      expect([dv.getUint32(0, true), dv.getUint32(4, true)]).toEqual([1, 0]);
      expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_IDENTIFY, cid: 4, cdw10: 0x13, sgl: keyed(4096) }))).toMatchObject({ sc: 0x02 });
    }
  });

  it("Get / Set Features number of queues, Keep Alive, unknown admin opcode", async () => {
    const { s } = await ready();
    const set = exec(s, ADMIN_QP, capsule({ opc: S.ADM_SET_FEATURES, cid: 1, cdw10: S.FID_NUMBER_OF_QUEUES, cdw11: (100 << 16) | 3 }));
    expect(set).toMatchObject({ status: 0, dw0: (30 << 16) | 3 });
    expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_GET_FEATURES, cid: 2, cdw10: S.FID_NUMBER_OF_QUEUES })).dw0).toBe((30 << 16) | 3);
    expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_SET_FEATURES, cid: 3, cdw10: S.FID_NUMBER_OF_QUEUES, cdw11: 0xffff }))).toMatchObject({ sc: 0x02 });
    expect(exec(s, ADMIN_QP, capsule({ opc: 0x18, cid: 4 })).status).toBe(0);
    expect(exec(s, ADMIN_QP, capsule({ opc: 0x7e, cid: 5 }))).toMatchObject({ sct: 0, sc: 0x01, dnr: true });
    // qid 5 is beyond the 4 queues granted now
    expect(exec(s, 30, connect(1, 5, 31, 1))).toMatchObject({ sct: 1, sc: 0x82, dw0: F.CONN_QID });
    expect(s.ctrl.stats().commands).toMatchObject({ set_features: 2, get_features: 1, keep_alive: 1, admin_0x7e: 1 });
  });
});

describe("namespaces", () => {
  it("one namespace per backend: NN, the active list, Identify of each, I/O by NSID, Flush to all", async () => {
    const card = (await setup()).card;
    const { MemoryBackend } = await import("../../host/backends/memory.js");
    const { StorageController } = await import("../../host/target/controller.js");
    const { RingNic } = await import("./rings.js");
    const d1 = new Uint8Array(1 << 20), d2 = new Uint8Array(1 << 21);
    let flushes = 0;
    const b2 = new MemoryBackend(d2, 4096);
    b2.flush = () => { flushes++; };
    const nic = new RingNic(card, 1);
    const ctrl = new StorageController(1, card, [new MemoryBackend(d1, 512), b2], { mtu: 1024, doorbell: () => {} });
    const s = { card, nic, ctrl, backend: b2, disk: d2 } as unknown as Setup;
    const host = new Uint8Array(65536);
    nic.region(KEY, VA, host);
    ioUp(s, adminUp(s));
    const dv = new DataView(host.buffer);
    expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_IDENTIFY, cid: 1, cdw10: S.CNS_CONTROLLER, sgl: keyed(4096) })).status).toBe(0);
    expect(dv.getUint32(S.IDC_NN, true)).toBe(2);
    expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_IDENTIFY, cid: 2, cdw10: S.CNS_ACTIVE_NS_LIST, sgl: keyed(4096) })).status).toBe(0);
    expect([dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true)]).toEqual([1, 2, 0]);
    expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_IDENTIFY, cid: 3, nsid: 1, cdw10: S.CNS_ACTIVE_NS_LIST, sgl: keyed(4096) })).status).toBe(0);
    expect([dv.getUint32(0, true), dv.getUint32(4, true)]).toEqual([2, 0]);
    expect(exec(s, ADMIN_QP, capsule({ opc: S.ADM_IDENTIFY, cid: 4, nsid: 2, cdw10: S.CNS_NAMESPACE, sgl: keyed(4096) })).status).toBe(0);
    expect([dv.getBigUint64(S.IDN_NSZE, true), (dv.getUint32(S.IDN_LBAF0, true) >>> 16) & 0xff]).toEqual([512n, 12]);
    host.set(pattern(8192, 8));
    expect(exec(s, IO_QP, capsule({ opc: S.IO_WRITE, cid: 5, nsid: 2, slba: 3n, cdw12: 1, sgl: keyed(8192) })).status).toBe(0);
    expect(diff(d2.subarray(3 * 4096, 5 * 4096), pattern(8192, 8))).toBe(-1);
    expect(d1.every((b) => b === 0)).toBe(true);
    expect(exec(s, IO_QP, capsule({ opc: S.IO_WRITE, cid: 6, nsid: 3, slba: 0n, cdw12: 0, sgl: keyed(512) }))).toMatchObject({ sc: 0x0b });
    expect(exec(s, IO_QP, capsule({ opc: S.IO_FLUSH, cid: 7, nsid: 0xffffffff })).status).toBe(0);
    expect(exec(s, IO_QP, capsule({ opc: S.IO_FLUSH, cid: 8, nsid: 1 })).status).toBe(0);
    expect(flushes).toBe(1);
  });
});

describe("I/O commands", () => {
  for (const [bs, mtu, len] of [[512, 1024, 4096], [4096, 4096, 65536], [512, 256, 65536], [4096, 1024, 4096]] as const) {
    it(`write then read ${len} bytes byte-exact, ${bs}-byte blocks, MTU ${mtu}`, async () => {
      const { s, host } = await ready({ bs, mtu, bytes: 1 << 21 });
      const data = pattern(len, len + mtu);
      host.set(data);
      const slba = 3;
      expect(exec(s, IO_QP, rw(S.IO_WRITE, 10, slba, len / bs, keyed(len))).status).toBe(0);
      expect(diff(s.disk.subarray(slba * bs, slba * bs + len), data)).toBe(-1);
      const read = s.nic.wqes.filter((w) => w.type === N.NicWqeType.READ).at(-1)!;
      expect(read).toMatchObject({ len, total: len, raddr: VA, rkey: KEY });
      host.fill(0);
      const before = s.nic.wqes.length;
      expect(exec(s, IO_QP, rw(S.IO_READ, 11, slba, len / bs, keyed(len, 4096))).status).toBe(0);
      expect(diff(host.subarray(4096, 4096 + len), data)).toBe(-1);
      const ws = s.nic.wqes.slice(before);
      const n = len / mtu;
      expect(ws.length).toBe(n + 1);
      expect(ws.map((w) => w.type)).toEqual(n === 1 ? [N.NicWqeType.SINGLE, N.NicWqeType.RESPONSE]
        : [N.NicWqeType.INITIAL, ...Array(n - 2).fill(N.NicWqeType.INTERMEDIATE), N.NicWqeType.TAIL, N.NicWqeType.RESPONSE]);
      for (const w of ws.slice(0, -1)) expect(w).toMatchObject({ len: mtu, total: len, raddr: VA + 4096n, rkey: KEY, cid: 11, qpn: IO_QP, flags: 0 });
      expect(s.ctrl.stats()).toMatchObject({ bytesRead: len, bytesWritten: len, inFlight: 0, stageInUse: 0 });
    });
  }

  it("in-capsule write: no RDMA READ, the data comes from the capsule", async () => {
    const { s } = await ready();
    const data = pattern(2048, 5);
    const before = s.nic.wqes.length;
    const r = exec(s, IO_QP, rw(S.IO_WRITE, 12, 8, 4, { inline: true, len: 2048 }, data));
    expect(r).toMatchObject({ status: 0, cid: 12, sqid: 1 });
    expect(s.nic.wqes.slice(before).map((w) => w.type)).toEqual([N.NicWqeType.RESPONSE]);
    expect(s.disk.subarray(8 * 512, 8 * 512 + 2048)).toEqual(data);
    // at an offset inside the capsule data
    const padded = new Uint8Array(512 + 512);
    padded.set(data.subarray(0, 512), 512);
    expect(exec(s, IO_QP, rw(S.IO_WRITE, 13, 100, 1, { inline: true, off: 512, len: 512 }, padded)).status).toBe(0);
    expect(s.disk.subarray(100 * 512, 101 * 512)).toEqual(data.subarray(0, 512));
  });

  it("Flush, Write Zeroes and DSM deallocate", async () => {
    const { s } = await ready();
    s.disk.fill(0xab, 0, 64 * 512);
    expect(exec(s, IO_QP, capsule({ opc: S.IO_FLUSH, cid: 1, nsid: 1 })).status).toBe(0);
    expect(exec(s, IO_QP, rw(S.IO_WRITE_ZEROES, 2, 4, 2, null)).status).toBe(0);
    expect([s.disk[3 * 512], s.disk[4 * 512], s.disk[6 * 512 - 1], s.disk[6 * 512]]).toEqual([0xab, 0, 0, 0xab]);
    const ranges = new Uint8Array(32), dv = new DataView(ranges.buffer);
    dv.setUint32(4, 3, true); dv.setBigUint64(8, 10n, true);
    dv.setUint32(16 + 4, 1, true); dv.setBigUint64(16 + 8, 20n, true);
    const dsm = capsule({ opc: S.IO_DSM, cid: 3, nsid: 1, cdw10: 1, cdw11: S.DSM_AD, sgl: { inline: true, len: 32 }, data: ranges });
    expect(exec(s, IO_QP, dsm).status).toBe(0);
    expect([s.disk[10 * 512], s.disk[13 * 512 - 1], s.disk[13 * 512], s.disk[20 * 512], s.disk[21 * 512]]).toEqual([0, 0, 0xab, 0, 0xab]);
    dv.setBigUint64(8, 2047n, true); // 2047 + 3 > 2048 blocks
    expect(exec(s, IO_QP, capsule({ opc: S.IO_DSM, cid: 4, nsid: 1, cdw10: 1, cdw11: S.DSM_AD, sgl: { inline: true, len: 32 }, data: ranges }))).toMatchObject({ sc: 0x80 });
    expect(s.disk[20 * 512 + 1]).toBe(0); // nothing of the failed command applied... range 2 untouched before too
  });

  it("malformed commands get their NVMe status, never an exception", async () => {
    const { s } = await ready();
    const cases: [Uint8Array, number, number, number?][] = [
      [capsule({ opc: 0x7e, cid: 1, nsid: 1 }), 0, 0x01], // invalid opcode
      [rw(S.IO_READ, 2, 2047, 2, keyed(1024)), 0, 0x80], // LBA out of range
      [rw(S.IO_READ, 3, 0, 1, { raw: 0x00, len: 512 }), 0, 0x11], // SGL type: data block with an address
      [rw(S.IO_READ, 4, 0, 1, { raw: 0x30, len: 512 }), 0, 0x11], // SGL type: last segment
      [rw(S.IO_READ, 5, 0, 2, keyed(512)), 0, 0x0f], // keyed length ≠ data length
      [rw(S.IO_WRITE, 6, 0, 2, { inline: true, len: 512 }, new Uint8Array(512)), 0, 0x0f], // in-capsule length ≠ data length
      [rw(S.IO_WRITE, 7, 0, 1, { inline: true, off: 256, len: 512 }, new Uint8Array(512)), 0, 0x16], // beyond the capsule
      [rw(S.IO_WRITE, 7, 0, 1, { inline: true, off: 0, len: 512 }), 0, 0x16], // capsule has no data at all
      [rw(S.IO_READ, 8, 0, 1, { inline: true, len: 512 }), 0, 0x02], // read into the capsule
      [rw(S.IO_READ, 9, 0, 512, keyed(512 * 512)), 0, 0x02], // 256 KiB: beyond MDTS
      [capsule({ opc: S.IO_READ, cid: 10, nsid: 2, cdw12: 0, sgl: keyed(512) }), 0, 0x0b], // namespace 2
      [capsule({ opc: S.IO_READ, cid: 11, nsid: 1, fuse: 1, sgl: keyed(512) }), 0, 0x02], // fused
      [capsule({ opc: S.IO_READ, cid: 12, nsid: 1, psdt: 0, sgl: keyed(512) }), 0, 0x02], // PRPs
    ];
    for (const [cap, sct, sc] of cases) {
      const r = exec(s, IO_QP, cap);
      expect({ cid: r.cid, sct: r.sct, sc: r.sc, dnr: r.dnr }).toEqual({ cid: cap[2]! | (cap[3]! << 8), sct, sc, dnr: true });
    }
    // a capsule shorter than an SQE (the NIC drops those; if one comes anyway it is answered)
    expect(exec(s, IO_QP, capsule({ opc: S.IO_FLUSH, cid: 13, nsid: 1 }), 40)).toMatchObject({ cid: 13, sc: 0x02 });
    expect(s.nic.wqes.filter((w) => w.type === N.NicWqeType.READ || w.type <= N.NicWqeType.SINGLE).length).toBe(0);
    expect(s.ctrl.stats().errors).toMatchObject({ invalid_opcode: 1, lba_range: 1, sgl_type: 2, sgl_length: 2, sgl_offset: 2, too_large: 1 });
  });

  it("SQHD counts the queue's commands modulo its size; SQID is the queue's", async () => {
    const { s } = await ready();
    const heads = [];
    for (let i = 0; i < 34; i++) heads.push(exec(s, IO_QP, capsule({ opc: S.IO_FLUSH, cid: i, nsid: 1 })).sqhd);
    expect(heads.slice(0, 3)).toEqual([2, 3, 4]); // the Connect was 1
    expect(heads[29]).toBe(31);
    expect(heads[30]).toBe(0);
    expect(s.nic.responses.at(-1)!.cqe.sqid).toBe(1);
  });
});

describe("back-pressure and events", () => {
  it("a full staging window makes commands wait, in order; none is lost", async () => {
    const { s, host } = await ready({ bytes: 4 << 20 });
    host.set(pattern(128 * 1024, 9));
    for (let i = 0; i < 20; i++) s.nic.submit(IO_QP, rw(S.IO_READ, 100 + i, i * 256, 256, keyed(128 * 1024)));
    s.ctrl.step();
    const first = s.nic.pending().filter((w) => w.type === N.NicWqeType.RESPONSE).length;
    expect(first).toBe(7); // 7 × (128 KiB + 16) fit in 1 MiB less one block
    expect(s.ctrl.stats().waiting).toBe(13);
    expect(s.ctrl.stats().errors.stage_full_waits).toBeGreaterThan(0);
    settle(s);
    const cids = s.nic.responses.slice(-20).map((r) => [r.cqe.cid, r.cqe.status]);
    expect(cids).toEqual(Array.from({ length: 20 }, (_, i) => [100 + i, 0]));
    expect(s.ctrl.stats()).toMatchObject({ inFlight: 0, waiting: 0, stageInUse: 0 });
  });

  it("a full send queue makes commands wait; the tail never passes the head by more than the depth", async () => {
    const { s } = await ready({ mtu: 256 });
    for (let i = 0; i < 70; i++) s.nic.submit(IO_QP, rw(S.IO_READ, i, i * 8, 8, keyed(4096))); // 17 WQEs each
    s.ctrl.step();
    expect(s.nic.pending().length).toBe(60 * 17);
    s.nic.serve(300);
    s.ctrl.step();
    expect(s.nic.pending().length).toBeLessThanOrEqual(M.NIC_SQ_DEPTH);
    settle(s);
    expect(s.nic.responses.slice(-70).every((r, i) => r.cqe.cid === i && r.cqe.status === 0)).toBe(true);
  });

  it("no more signaled WQEs outstanding than half the event ring: the rest wait for events", async () => {
    const { s } = await ready();
    for (let i = 0; i < 600; i++) s.nic.submit(IO_QP, capsule({ opc: S.IO_FLUSH, cid: i, nsid: 1 }));
    s.ctrl.step();
    expect(s.nic.pending().length).toBe(M.NIC_EVT_DEPTH / 2);
    expect(s.ctrl.stats().errors.event_budget_waits).toBeGreaterThan(0);
    settle(s);
    expect(s.nic.responses.slice(-600).map((r) => r.cqe.cid)).toEqual([...Array(600).keys()]);
  });

  it("ERROR on the RDMA READ answers Data Transfer Error; ERROR on the response frees the command; stale events are counted", async () => {
    const { s } = await ready();
    s.nic.submit(IO_QP, rw(S.IO_WRITE, 40, 0, 1, keyed(512)));
    s.ctrl.step();
    s.nic.serve(Infinity, (w) => w.type === N.NicWqeType.READ);
    settle(s);
    expect(s.nic.responses.at(-1)!.cqe).toMatchObject({ cid: 40, sct: 0, sc: 0x04 });
    s.nic.submit(IO_QP, rw(S.IO_READ, 41, 0, 1, keyed(512)));
    s.ctrl.step();
    s.nic.serve(Infinity, (w) => w.type === N.NicWqeType.RESPONSE);
    s.ctrl.step();
    expect(s.ctrl.stats()).toMatchObject({ inFlight: 0, stageInUse: 0 });
    // a data packet refused while its response still goes out as success: counted
    s.nic.submit(IO_QP, rw(S.IO_READ, 42, 0, 1, keyed(512)));
    s.ctrl.step();
    s.nic.serve(Infinity, (w) => w.type === N.NicWqeType.SINGLE);
    s.ctrl.step();
    expect(s.nic.responses.at(-1)!.cqe).toMatchObject({ cid: 42, status: 0 });
    s.nic.event(0x12345678, N.EvKind.SENT);
    s.nic.event(0, N.EvKind.READ_DONE);
    expect(() => s.ctrl.step()).not.toThrow();
    expect(s.ctrl.stats().errors).toMatchObject({ read_failed: 1, response_failed: 1, data_failed: 1, response_after_failed_data: 1, stale_event: 2 });
  });
});

describe("protection information", () => {
  const guardOf = (b: Uint8Array) => crc16(b);

  it("writes store PI (CRC-16 T10-DIF, reference tag = LBA); reads stage it and mark every data packet for the NIC's check", async () => {
    const { s, host } = await ready({ protection: true, bs: 512, mtu: 1024 });
    const data = pattern(4096, 77);
    host.set(data);
    expect(exec(s, IO_QP, rw(S.IO_WRITE, 1, 40, 8, keyed(4096))).status).toBe(0);
    const before = s.nic.wqes.length;
    s.nic.submit(IO_QP, rw(S.IO_READ, 2, 40, 8, keyed(4096, 8192)));
    s.ctrl.step();
    const ws = s.nic.pending();
    expect(ws.length).toBe(5);
    for (const [i, w] of ws.slice(0, 4).entries()) {
      expect(w).toMatchObject({ flags: N.NWF_DIF, block: 512, reftag: 40 + 2 * i });
      for (let b = 0; b < 2; b++) {
        const pi = new DataView(s.card.u8.buffer, s.nic.stage + w.piOff + b * 8, 8);
        const blk = s.card.u8.subarray(s.nic.stage + w.stageOff + b * 512, s.nic.stage + w.stageOff + (b + 1) * 512);
        expect(pi.getUint16(0)).toBe(guardOf(blk));
        expect(pi.getUint16(2)).toBe(0);
        expect(pi.getUint32(4)).toBe(40 + 2 * i + b);
      }
    }
    s.nic.serve();
    settle(s);
    expect(s.nic.wqes.length).toBe(before + 5);
  });

  it("PI of a read that crosses a PI page (1024 blocks) is staged block by block in order", async () => {
    const { s, host } = await ready({ protection: true, bs: 512, mtu: 4096 });
    host.set(pattern(8192, 31));
    expect(exec(s, IO_QP, rw(S.IO_WRITE, 1, 1020, 16, keyed(8192))).status).toBe(0);
    s.nic.submit(IO_QP, rw(S.IO_READ, 2, 1020, 16, keyed(8192)));
    s.ctrl.step();
    const ws = s.nic.pending().slice(0, 2);
    const tags = ws.flatMap((w) => Array.from({ length: w.len / 512 }, (_, b) => {
      const pi = new DataView(s.card.u8.buffer, s.nic.stage + w.piOff + b * 8, 8);
      const blk = s.card.u8.subarray(s.nic.stage + w.stageOff + b * 512, s.nic.stage + w.stageOff + (b + 1) * 512);
      return [pi.getUint32(4), pi.getUint16(0) === guardOf(blk)];
    }));
    expect(tags).toEqual(Array.from({ length: 16 }, (_, i) => [1020 + i, true]));
    settle(s);
  });

  it("with packets smaller than a block the controller checks PI itself: corrupt(lba) → guard check error, no data sent", async () => {
    const { s, host } = await ready({ protection: true, bs: 4096, mtu: 1024, bytes: 1 << 21 });
    host.set(pattern(8192, 3));
    expect(exec(s, IO_QP, rw(S.IO_WRITE, 1, 7, 2, keyed(8192))).status).toBe(0);
    expect(exec(s, IO_QP, rw(S.IO_READ, 2, 7, 2, keyed(8192))).status).toBe(0);
    s.ctrl.corrupt(8, 100);
    const before = s.nic.wqes.length;
    expect(exec(s, IO_QP, rw(S.IO_READ, 3, 7, 2, keyed(8192)))).toMatchObject({ sct: 2, sc: 0x82 });
    expect(s.nic.wqes.slice(before).map((w) => w.type)).toEqual([N.NicWqeType.RESPONSE]);
    // a block never written has PI made from its contents when first read, so corrupting it fails too
    expect(exec(s, IO_QP, rw(S.IO_READ, 4, 100, 1, keyed(4096))).status).toBe(0);
    s.ctrl.corrupt(200);
    expect(exec(s, IO_QP, rw(S.IO_READ, 5, 200, 1, keyed(4096)))).toMatchObject({ sct: 2, sc: 0x82 });
  });

  it("difCheck off: the controller does not check (the data goes as it is)", async () => {
    const { s, host } = await ready({ protection: true, bs: 4096, mtu: 1024, bytes: 1 << 21, difCheck: false });
    expect(exec(s, IO_QP, rw(S.IO_READ, 1, 9, 1, keyed(4096))).status).toBe(0);
    s.ctrl.corrupt(9, 5);
    expect(exec(s, IO_QP, rw(S.IO_READ, 2, 9, 1, keyed(4096))).status).toBe(0);
    expect(diff(host.subarray(0, 4096), s.disk.subarray(9 * 4096, 10 * 4096))).toBe(-1);
  });
});

describe("staging allocator", () => {
  it("first fit, freed out of order, coalesced back to one extent", () => {
    const a = new StageAllocator(4096);
    const x = a.alloc(100), y = a.alloc(1000), z = a.alloc(64);
    expect([x, y, z]).toEqual([0, 128, 1152]);
    expect(a.alloc(4096)).toBe(-1);
    a.free(y, 1000);
    expect(a.alloc(900)).toBe(128);
    a.free(128, 900);
    a.free(x, 100);
    a.free(z, 64);
    expect(a.extents()).toEqual([[0, 4096]]);
    expect(a.inUse).toBe(0);
    expect(a.highWater).toBe(1216); // the furthest byte ever handed out stays known after the frees (the fuzzer restores up to it)
    expect(() => a.free(0, 64)).toThrow();
  });
});
