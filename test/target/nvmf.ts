// NVMe-oF command capsules and response capsules for the target tests, built byte by byte from
// the spec layouts (nvme/spec.ts SQE/CQE, nvmeof/defs.ts SGL and Fabrics fields).
import * as S from "../../assembly/nvme/spec.js";
import * as F from "../../assembly/nvmeof/defs.js";

export { S, F };

export type Sgl =
  | { keyed: true; addr: bigint; len: number; key: number; id?: number }
  | { inline: true; off?: number; len: number }
  | { raw: number; len?: number }
  | null;

export interface CapsuleSpec {
  opc: number; cid: number; nsid?: number; fctype?: number; psdt?: number; fuse?: number;
  cdw10?: number; cdw11?: number; cdw12?: number; cdw13?: number; slba?: bigint;
  sgl?: Sgl;
  data?: Uint8Array; // in-capsule data after the SQE
  patch?: (sqe: DataView) => void;
}

export function capsule(s: CapsuleSpec): Uint8Array {
  const b = new Uint8Array(S.SQE_SIZE + (s.data?.length ?? 0));
  const dv = new DataView(b.buffer);
  const psdt = s.psdt ?? F.CDW0_PSDT_SGL >>> S.CDW0_PSDT_SHIFT;
  dv.setUint32(S.SQE_CDW0, (s.opc | ((s.fuse ?? 0) << S.CDW0_FUSE_SHIFT) | (psdt << S.CDW0_PSDT_SHIFT) | (s.cid << S.CDW0_CID_SHIFT)) >>> 0, true);
  if (s.opc === F.OPC_FABRICS) b[F.FAB_FCTYPE] = s.fctype ?? 0;
  else dv.setUint32(S.SQE_NSID, s.nsid ?? 0, true);
  if (s.cdw10 !== undefined) dv.setUint32(S.SQE_CDW10, s.cdw10 >>> 0, true);
  if (s.slba !== undefined) dv.setBigUint64(S.SQE_CDW10, s.slba, true);
  if (s.cdw11 !== undefined) dv.setUint32(S.SQE_CDW11, s.cdw11 >>> 0, true);
  if (s.cdw12 !== undefined) dv.setUint32(S.SQE_CDW12, s.cdw12 >>> 0, true);
  if (s.cdw13 !== undefined) dv.setUint32(52, s.cdw13 >>> 0, true);
  const g = s.sgl, o = F.SQE_SGL1;
  if (g && "keyed" in g) {
    dv.setBigUint64(o + F.SGL_ADDR, g.addr, true);
    b[o + 8] = g.len & 0xff; b[o + 9] = (g.len >>> 8) & 0xff; b[o + 10] = (g.len >>> 16) & 0xff;
    dv.setUint32(o + F.SGL_KEYED_KEY, g.key, true);
    b[o + F.SGL_ID] = g.id ?? F.SGL_ID_KEYED;
  } else if (g && "inline" in g) {
    dv.setBigUint64(o + F.SGL_ADDR, BigInt(g.off ?? 0), true);
    dv.setUint32(o + F.SGL_LEN, g.len, true);
    b[o + F.SGL_ID] = F.SGL_ID_INCAPSULE;
  } else if (g) {
    dv.setUint32(o + F.SGL_LEN, g.len ?? 0, true);
    b[o + F.SGL_ID] = g.raw;
  }
  if (s.data) b.set(s.data, S.SQE_SIZE);
  s.patch?.(dv);
  return b;
}

export const SUBNQN = "nqn.2026-01.io.wasm-dpu:target";
export const HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:test-host";

/** The 1024-byte Connect data (NVMe-oF 1.1 §3.3 Figure 20). */
export function connectData(cntlid: number, subnqn = SUBNQN, hostnqn = HOSTNQN): Uint8Array {
  const d = new Uint8Array(F.CONN_DATA_SIZE);
  d.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], F.CD_HOSTID);
  new DataView(d.buffer).setUint16(F.CD_CNTLID, cntlid, true);
  d.set(new TextEncoder().encode(subnqn), F.CD_SUBNQN);
  d.set(new TextEncoder().encode(hostnqn), F.CD_HOSTNQN);
  return d;
}

/** Connect with its data in the capsule (or, with `sgl`, named by a keyed SGL). */
export function connect(cid: number, qid: number, sqsize: number, cntlid: number, o: { subnqn?: string; hostnqn?: string; sgl?: Sgl; recfmt?: number } = {}): Uint8Array {
  const data = connectData(cntlid, o.subnqn, o.hostnqn);
  return capsule({
    opc: F.OPC_FABRICS, fctype: F.FCTYPE_CONNECT, cid, sgl: o.sgl ?? { inline: true, len: data.length }, data: o.sgl ? undefined : data,
    patch: (dv) => { dv.setUint16(F.CONN_RECFMT, o.recfmt ?? 0, true); dv.setUint16(F.CONN_QID, qid, true); dv.setUint16(F.CONN_SQSIZE, sqsize, true); },
  });
}

export function propertyGet(cid: number, offset: number, size8: boolean): Uint8Array {
  return capsule({ opc: F.OPC_FABRICS, fctype: F.FCTYPE_PROPERTY_GET, cid, sgl: null,
    patch: (dv) => { dv.setUint8(F.PROP_ATTRIB, size8 ? 1 : 0); dv.setUint32(F.PROP_OFFSET, offset, true); } });
}

export function propertySet(cid: number, offset: number, value: number): Uint8Array {
  return capsule({ opc: F.OPC_FABRICS, fctype: F.FCTYPE_PROPERTY_SET, cid, sgl: null,
    patch: (dv) => { dv.setUint32(F.PROP_OFFSET, offset, true); dv.setBigUint64(F.PROP_VALUE, BigInt(value), true); } });
}

/** CC with EN and the queue entry sizes a Linux host programs (IOSQES 6, IOCQES 4). */
export const CC_ENABLE = 1 | (6 << 16) | (4 << 20);

export interface Cqe { dw0: number; dw1: number; sqhd: number; sqid: number; cid: number; phase: number; status: number; sct: number; sc: number; dnr: boolean }

export function parseCqe(b: Uint8Array): Cqe {
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  const dw2 = dv.getUint32(S.CQE_DW2, true), dw3 = dv.getUint32(S.CQE_DW3, true);
  const status = dw3 >>> S.CQE_STATUS_SHIFT;
  return {
    dw0: dv.getUint32(S.CQE_DW0, true), dw1: dv.getUint32(S.CQE_DW1, true), sqhd: dw2 & 0xffff, sqid: dw2 >>> 16,
    cid: dw3 & 0xffff, phase: (dw3 >>> S.CQE_PHASE_SHIFT) & 1, status, sct: (status >>> 8) & 7, sc: status & 0xff, dnr: (status & S.ST_DNR) !== 0,
  };
}

/** Deterministic test data (xorshift32). */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 0xff; }
  return b;
}
