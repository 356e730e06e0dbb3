// What the storage controllers execute: NVMe-oF Fabrics commands (NVMe-oF 1.1 §3: Connect,
// Property Get / Set), admin commands (NVMe base 2.0 §5: Identify, Get / Set Features, Keep
// Alive) and NVM I/O commands (NVM command set 1.0 §3: Read, Write, Flush, Write Zeroes, Dataset
// Management). The command's host data (if any) is already in staging; data for the host is
// left there. A failure sets x.status (and x.reason, the stats key); nothing here throws on
// bad input.
import * as S from "../../assembly/nvme/spec.js";
import * as R from "../../assembly/nvme/regs.js";
import * as F from "../../assembly/nvmeof/defs.js";
import * as D from "./defs.js";
import type { Cmd } from "./controller.js";
import type { Namespace, Subsystem } from "./subsystem.js";

/** One execution: the command, where its staging is, and its outcome (one per controller, reused). */
export interface Exec {
  c: Cmd;
  readonly sub: Subsystem;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly stageBase: number;
  /** CRC-16 T10-DIF of the n bytes at card offset p. */
  readonly guard: (p: number, n: number) => number;
  /** Guards of n blocks of bs bytes at p, big-endian every `stride` bytes from out (one firmware call). */
  readonly guards: (p: number, bs: number, n: number, out: number, stride: number) => void;
  /** Check PI here when the NIC cannot (packets below the block size). */
  readonly difCheck: boolean;
  status: number;
  reason: string;
}

export const MODEL = "wasm-dpu NVMe-oF target";
export const SERIAL = "WDPU0001";
export const FIRMWARE_REV = "0.1.0";
const KAS_100MS = 10; // keep alive granularity: 1 s

const fail = (x: Exec, status: number, reason: string) => { x.status = status; x.reason = reason; };
const data = (x: Exec) => x.stageBase + x.c.dataOff;

// ---- Fabrics ----

export function executeFabrics(x: Exec): void {
  const t = x.c.sqe[F.FAB_FCTYPE];
  if (t === F.FCTYPE_CONNECT) connect(x);
  else if (t === F.FCTYPE_PROPERTY_GET) propertyGet(x);
  else propertySet(x);
}

/** Connect Invalid Parameters naming the field: in the Connect data or in the SQE. */
function badParam(x: Exec, reason: string, off: number, inData: boolean): void {
  fail(x, F.S_CONNECT_INVALID_PARAMETERS | S.ST_DNR, reason);
  x.c.dw0 = (inData ? D.CONNECT_IATTR_DATA : 0) | off;
}

function connect(x: Exec): void {
  const c = x.c, q = c.qp, d = data(x);
  const recfmt = c.dv.getUint16(F.CONN_RECFMT, true), qid = c.dv.getUint16(F.CONN_QID, true);
  const sqsize = c.dv.getUint16(F.CONN_SQSIZE, true);
  if (recfmt !== 0) { fail(x, F.S_CONNECT_INCOMPATIBLE_FORMAT | S.ST_DNR, "connect_format"); c.dw0 = F.CONN_RECFMT; return; }
  if (sqsize === 0 || sqsize + 1 > D.QUEUE_ENTRIES) return badParam(x, "connect_sqsize", F.CONN_SQSIZE, false);
  if (nqn(x.u8, d + F.CD_SUBNQN) !== x.sub.subnqn) return badParam(x, "connect_subnqn", F.CD_SUBNQN, true);
  const hostnqn = nqn(x.u8, d + F.CD_HOSTNQN), cntlid = x.dv.getUint16(d + F.CD_CNTLID, true);
  let a;
  if (qid === 0) {
    if (cntlid !== F.CNTLID_DYNAMIC) return badParam(x, "connect_cntlid", F.CD_CNTLID, true);
    a = x.sub.associate(hostnqn, x.u8.slice(d + F.CD_HOSTID, d + F.CD_HOSTID + 16));
    if (!a) { fail(x, F.S_CONNECT_CONTROLLER_BUSY | S.ST_DNR, "connect_no_cntlid"); return; }
    a.kato = c.dv.getUint32(F.CONN_KATO, true);
  } else {
    a = x.sub.assocs.get(cntlid);
    if (!a || a.hostnqn !== hostnqn) return badParam(x, a ? "connect_hostnqn" : "connect_cntlid", a ? F.CD_HOSTNQN : F.CD_CNTLID, true);
    if (qid > x.sub.maxQid || qid > a.nsqa + 1) return badParam(x, "connect_qid", F.CONN_QID, false);
    if (a.ioQueues.has(qid)) { fail(x, F.S_CONNECT_CONTROLLER_BUSY | S.ST_DNR, "connect_qid_in_use"); return; }
    a.ioQueues.add(qid);
  }
  q.qid = qid;
  q.assoc = a;
  q.sqsize = sqsize + 1;
  q.sqhdOff = (c.sqe[F.CONN_CATTR]! & D.CATTR_SQFC_DISABLE) !== 0;
  q.sqhd = 1 % q.sqsize; // the Connect itself was the queue's first entry
  c.sqhd = q.sqhdOff ? 0xffff : q.sqhd;
  c.dw0 = a.cntlid;
}

function cap(): [number, number] {
  const lo = (D.QUEUE_ENTRIES - 1) | R.NVME_CAP_CQR | (R.NVME_CAP_TO << R.NVME_CAP_TO_SHIFT);
  return [lo >>> 0, R.NVME_CAP_HI_CSS_NVM]; // MPSMIN = MPSMAX = 0: 4 KiB pages
}

function propertyGet(x: Exec): void {
  const c = x.c, a = c.qp.assoc!, size8 = (c.sqe[F.PROP_ATTRIB]! & 1) === F.PROP_SIZE_8;
  const off = c.dv.getUint32(F.PROP_OFFSET, true);
  if (size8 && off === R.NVME_REG_CAP) { [c.dw0, c.dw1] = cap(); return; }
  if (size8) return fail(x, S.S_INVALID_FIELD, "property");
  if (off === R.NVME_REG_VS) c.dw0 = R.NVME_VS_2_0;
  else if (off === R.NVME_REG_CC) c.dw0 = a.cc;
  else if (off === R.NVME_REG_CSTS) c.dw0 = a.csts;
  else fail(x, S.S_INVALID_FIELD, "property");
}

function propertySet(x: Exec): void {
  const c = x.c, a = c.qp.assoc!;
  if ((c.sqe[F.PROP_ATTRIB]! & 1) !== F.PROP_SIZE_4 || c.dv.getUint32(F.PROP_OFFSET, true) !== R.NVME_REG_CC) return fail(x, S.S_INVALID_FIELD, "property");
  const cc = c.dv.getUint32(F.PROP_VALUE, true), was = a.cc;
  a.cc = cc;
  if ((cc & R.NVME_CC_EN) && !(was & R.NVME_CC_EN)) a.csts = ccValid(cc) ? R.NVME_CSTS_RDY : R.NVME_CSTS_CFS;
  else if (!(cc & R.NVME_CC_EN) && (was & R.NVME_CC_EN)) a.csts = 0;
  if (((cc >>> R.NVME_CC_SHN_SHIFT) & 3) !== 0) a.csts = (a.csts & ~(3 << R.NVME_CSTS_SHST_SHIFT)) | (R.NVME_SHST_COMPLETE << R.NVME_CSTS_SHST_SHIFT);
}

/** CC on enable: 64-byte SQEs, 16-byte CQEs, 4 KiB pages, NVM command set, round robin (as Linux nvmet). */
function ccValid(cc: number): boolean {
  return ((cc >>> R.NVME_CC_IOSQES_SHIFT) & 0xf) === R.NVME_SQES_LOG2 && ((cc >>> R.NVME_CC_IOCQES_SHIFT) & 0xf) === R.NVME_CQES_LOG2
    && ((cc >>> R.NVME_CC_MPS_SHIFT) & R.NVME_CC_MPS_MASK) === 0 && ((cc >>> R.NVME_CC_AMS_SHIFT) & R.NVME_CC_AMS_MASK) === 0
    && ((cc >>> R.NVME_CC_CSS_SHIFT) & R.NVME_CC_CSS_MASK) === 0;
}

// ---- Admin ----

export function executeAdmin(x: Exec): void {
  const opc = x.c.opc;
  if (opc === S.ADM_IDENTIFY) identify(x);
  else if (opc === S.ADM_GET_FEATURES) getFeatures(x);
  else if (opc === S.ADM_SET_FEATURES) setFeatures(x);
  // Keep Alive: accepted; no keep-alive timer runs (there is no wall clock to expire it by).
}

function identify(x: Exec): void {
  const c = x.c, d = data(x), cns = c.dv.getUint32(S.SQE_CDW10, true) & S.CNS_MASK, nsid = c.dv.getUint32(S.SQE_NSID, true);
  x.u8.fill(0, d, d + S.IDENTIFY_SIZE);
  if (cns === S.CNS_CONTROLLER) identifyController(x, d);
  else if (cns === S.CNS_NAMESPACE) {
    const ns = x.sub.ns(nsid);
    if (!ns) fail(x, S.S_INVALID_NAMESPACE, "invalid_namespace");
    else identifyNamespace(x, d, ns);
  } else if (cns === S.CNS_ACTIVE_NS_LIST) {
    // The active NSIDs greater than CDW1.NSID, ascending, at most 1024 of them.
    if (nsid >= S.NSID_FIRST_INVALID_LIST) fail(x, S.S_INVALID_NAMESPACE, "invalid_namespace");
    else x.sub.namespaces.filter((n) => n.nsid > nsid).slice(0, S.IDENTIFY_SIZE / 4).forEach((n, i) => x.dv.setUint32(d + 4 * i, n.nsid, true));
  } else fail(x, S.S_INVALID_FIELD, "identify_cns");
}

function identifyController(x: Exec, d: number): void {
  const dv = x.dv, a = x.c.qp.assoc!;
  dv.setUint16(d + S.IDC_VID, R.NVME_VENDOR_ID, true);
  dv.setUint16(d + S.IDC_SSVID, R.NVME_VENDOR_ID, true);
  ascii(x.u8, d + S.IDC_SN, S.IDC_SN_LEN, SERIAL);
  ascii(x.u8, d + S.IDC_MN, S.IDC_MN_LEN, MODEL);
  ascii(x.u8, d + S.IDC_FR, S.IDC_FR_LEN, FIRMWARE_REV);
  x.u8[d + D.IDC_CMIC] = 1 << 1; // two or more controllers: every storage controller serves the namespace
  x.u8[d + S.IDC_MDTS] = D.MDTS;
  dv.setUint16(d + S.IDC_CNTLID, a.cntlid, true);
  dv.setUint32(d + S.IDC_VER, R.NVME_VS_2_0, true);
  x.u8[d + S.IDC_CNTRLTYPE] = S.CNTRLTYPE_IO;
  dv.setUint16(d + D.IDC_KAS, KAS_100MS, true);
  x.u8[d + S.IDC_SQES] = (R.NVME_SQES_LOG2 << 4) | R.NVME_SQES_LOG2;
  x.u8[d + S.IDC_CQES] = (R.NVME_CQES_LOG2 << 4) | R.NVME_CQES_LOG2;
  dv.setUint16(d + S.IDC_MAXCMD, D.QUEUE_ENTRIES, true);
  dv.setUint32(d + S.IDC_NN, x.sub.namespaces.length, true);
  dv.setUint16(d + S.IDC_ONCS, S.ONCS_DSM | S.ONCS_WRITE_ZEROES, true);
  dv.setUint32(d + S.IDC_SGLS, D.SGLS_SUPPORTED | D.SGLS_KEYED | D.SGLS_OFFSET, true);
  x.u8.set(new TextEncoder().encode(x.sub.subnqn), d + D.IDC_SUBNQN);
  dv.setUint32(d + D.IDC_IOCCSZ, (S.SQE_SIZE + F.INCAPSULE_MAX) / 16, true);
  dv.setUint32(d + D.IDC_IORCSZ, S.CQE_SIZE / 16, true);
  x.u8[d + D.IDC_MSDBD] = 1;
}

function identifyNamespace(x: Exec, d: number, ns: Namespace): void {
  const dv = x.dv, blocks = BigInt(ns.blocks), pi = ns.protection;
  dv.setBigUint64(d + S.IDN_NSZE, blocks, true);
  dv.setBigUint64(d + S.IDN_NCAP, blocks, true);
  dv.setBigUint64(d + S.IDN_NUSE, blocks, true);
  x.u8[d + S.IDN_NLBAF] = 0;
  x.u8[d + S.IDN_FLBAS] = pi ? D.FLBAS_EXTENDED : 0; // LBA format 0
  x.u8[d + D.IDN_MC] = pi ? D.MC_EXTENDED : 0;
  x.u8[d + D.IDN_DPC] = pi ? D.DPC_TYPE1 : 0;
  x.u8[d + D.IDN_DPS] = pi ? D.DPS_TYPE1 : 0;
  x.u8[d + S.IDN_DLFEAT] = S.DLFEAT_READS_ZERO;
  dv.setUint32(d + S.IDN_LBAF0, (pi ? F.PI_SIZE : 0) | (Math.log2(ns.blockSize) << S.LBAF_LBADS_SHIFT), true);
}

function getFeatures(x: Exec): void {
  const c = x.c, a = c.qp.assoc!, fid = c.dv.getUint32(S.SQE_CDW10, true) & S.FEAT_FID_MASK;
  if (fid === S.FID_NUMBER_OF_QUEUES) c.dw0 = (a.nsqa | (a.ncqa << S.NQ_NCQ_SHIFT)) >>> 0;
  else if (fid === D.FID_KEEP_ALIVE_TIMER) c.dw0 = a.kato;
  else if (fid === D.FID_ASYNC_EVENT_CONFIG) c.dw0 = a.aec;
  else if (fid === S.FID_VOLATILE_WRITE_CACHE) c.dw0 = 0; // no volatile write cache
  else fail(x, S.S_INVALID_FIELD, "feature");
}

function setFeatures(x: Exec): void {
  const c = x.c, a = c.qp.assoc!, fid = c.dv.getUint32(S.SQE_CDW10, true) & S.FEAT_FID_MASK;
  const v = c.dv.getUint32(S.SQE_CDW11, true);
  if (fid === S.FID_NUMBER_OF_QUEUES) {
    const nsqr = v & S.NQ_MASK, ncqr = v >>> S.NQ_NCQ_SHIFT;
    if (nsqr === S.NQ_UNLIMITED_REQ || ncqr === S.NQ_UNLIMITED_REQ) return fail(x, S.S_INVALID_FIELD, "feature");
    const max = x.sub.maxQid - 1; // 0's based
    a.nsqa = Math.min(nsqr, max);
    a.ncqa = Math.min(ncqr, max);
    c.dw0 = (a.nsqa | (a.ncqa << S.NQ_NCQ_SHIFT)) >>> 0;
  } else if (fid === D.FID_KEEP_ALIVE_TIMER) a.kato = v;
  else if (fid === D.FID_ASYNC_EVENT_CONFIG) a.aec = v;
  else fail(x, S.S_INVALID_FIELD, "feature");
}

// ---- NVM I/O ----

export function executeIo(x: Exec): void {
  const c = x.c, nlb = (c.dv.getUint32(S.SQE_CDW12, true) & D.NLB_MASK) + 1;
  if (c.opc === S.IO_FLUSH) {
    for (const ns of c.ns ? [c.ns] : x.sub.namespaces) ns.backend.flush(); // NSID FFFFFFFFh: all of them
    return;
  }
  const ns = c.ns!;
  switch (c.opc) {
    case S.IO_READ: return read(x, ns, nlb);
    case S.IO_WRITE: return write(x, ns, nlb);
    case S.IO_WRITE_ZEROES:
      ns.backend.writeZeroes(c.lba, nlb);
      ns.pi?.drop(c.lba, nlb); // zeroed blocks get fresh PI when read
      return;
    case S.IO_DSM: return dsm(x, ns);
  }
}

function read(x: Exec, ns: Namespace, nlb: number): void {
  const c = x.c, bs = ns.blockSize, d = data(x);
  ns.backend.read(c.lba, x.u8.subarray(d, d + c.xfer));
  const pi = ns.pi;
  if (!pi) return;
  const p = x.stageBase + c.piOff;
  for (let i = 0; i < nlb; i++) {
    const lba = c.lba + i;
    if (!pi.has(lba)) pi.set(lba, x.guard(d + i * bs, bs), 0, lba >>> 0);
  }
  pi.copyTo(c.lba, nlb, x.u8, p);
  // Packets below the block size carry no whole block for the NIC to check: check here.
  if (x.difCheck && c.qp.mtu < bs) checkPi(x, bs, d, p, nlb);
}

/** Guard and reference tag of nlb staged blocks against their staged PI (application tag FFFFh: unchecked). */
function checkPi(x: Exec, bs: number, d: number, p: number, nlb: number): void {
  const dv = x.dv;
  for (let i = 0; i < nlb; i++) {
    const e = p + i * F.PI_SIZE;
    if (dv.getUint16(e + F.PI_APPTAG) === 0xffff) continue;
    if (x.guard(d + i * bs, bs) !== dv.getUint16(e + F.PI_GUARD)) return fail(x, F.S_E2E_GUARD_ERROR, "dif_guard");
    if (dv.getUint32(e + F.PI_REFTAG) !== ((x.c.lba + i) >>> 0)) return fail(x, F.S_E2E_REFTAG_ERROR, "dif_reftag");
  }
}

function write(x: Exec, ns: Namespace, nlb: number): void {
  const c = x.c, bs = ns.blockSize, d = data(x);
  const pi = ns.pi;
  if (pi) {
    const p = x.stageBase + c.piOff; // the command's PI room in staging, beside its data
    x.guards(d, bs, nlb, p, F.PI_SIZE);
    for (let i = 0; i < nlb; i++) pi.set(c.lba + i, x.dv.getUint16(p + i * F.PI_SIZE), 0, (c.lba + i) >>> 0);
  }
  ns.backend.write(c.lba, x.u8.subarray(d, d + c.xfer));
}

/** Dataset Management: every range checked first, then (attribute Deallocate) each dropped. */
function dsm(x: Exec, ns: Namespace): void {
  const c = x.c, d = data(x), n = c.xfer / S.DSM_RANGE_SIZE;
  const ranges: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const r = d + i * S.DSM_RANGE_SIZE;
    const nlb = x.dv.getUint32(r + S.DSM_RANGE_NLB, true), slba = x.dv.getBigUint64(r + S.DSM_RANGE_SLBA, true);
    if (slba + BigInt(nlb) > BigInt(ns.blocks)) return fail(x, S.S_LBA_OUT_OF_RANGE, "lba_range");
    ranges.push([Number(slba), nlb]);
  }
  if ((c.dv.getUint32(S.SQE_CDW11, true) & S.DSM_AD) === 0) return; // hints only
  for (const [lba, nlb] of ranges) {
    if (nlb === 0) continue;
    ns.backend.discard(lba, nlb);
    ns.pi?.drop(lba, nlb);
  }
}

// ---- strings ----

/** A NUL-padded NQN field as a string (at most NQN_LEN bytes). */
function nqn(u8: Uint8Array, p: number): string {
  let end = p;
  while (end < p + F.NQN_LEN && u8[end] !== 0) end++;
  return new TextDecoder().decode(u8.subarray(p, end));
}

/** An ASCII identify string, space padded (base §1.5). */
function ascii(u8: Uint8Array, p: number, n: number, s: string): void {
  u8.fill(S.ASCII_SPACE, p, p + n);
  for (let i = 0; i < Math.min(n, s.length); i++) u8[p + i] = s.charCodeAt(i) & 0x7f;
}
