// NVMe admin command set (NVMe base 2.0 §5): Identify, Create/Delete I/O SQ/CQ,
// Set/Get Features (Number of Queues, Interrupt Coalescing, Volatile Write Cache),
// Doorbell Buffer Config. Everything else is Invalid Command Opcode.
// Each handler returns an NVMe status (and sets `adminDw0`); errors are counted.
import { MAX_QUEUES, MAX_VECTORS, FUNC_ENABLED_OFF } from "../memmap";
import { Counter } from "../counters";
import { count } from "../stats";
import { translate, INVALID } from "../dma";
import { funcAddr, funcGuest, funcDisk, funcQueues, queueAddr, scratchAddr } from "../pcie/func";
import { irqSetCoalescing } from "../pcie/irq";
import { reqAlloc, reqFree, REQ_NONE } from "../blk/req";
import { diskBlocks, diskBlockShift } from "../blk/disk";
import * as R from "./regs";
import * as S from "./spec";
import * as Q from "./queue";
import { prpMap, segsFill } from "./prp";

/** Command-specific DW0 of the last admin completion. */
export let adminDw0: u32 = 0;

@inline function fail(c: Counter, status: u32): u32 { count(c); return status; }

export function adminCommand(f: u32, e: u32): u32 {
  adminDw0 = 0;
  count(Counter.nvme_admin_commands);
  const cdw0 = load<u32>(e + S.SQE_CDW0);
  if (((cdw0 >> S.CDW0_FUSE_SHIFT) & S.CDW0_FUSE_MASK) != 0) return fail(Counter.err_nvme_fused_unsupported, S.S_INVALID_FIELD);
  if (((cdw0 >> S.CDW0_PSDT_SHIFT) & S.CDW0_PSDT_MASK) != 0) return fail(Counter.err_nvme_sgl_unsupported, S.S_INVALID_FIELD);
  const opc = cdw0 & S.CDW0_OPC_MASK;
  if (opc == S.ADM_IDENTIFY) return identify(f, e);
  if (opc == S.ADM_CREATE_CQ) return createCq(f, e);
  if (opc == S.ADM_CREATE_SQ) return createSq(f, e);
  if (opc == S.ADM_DELETE_SQ) return deleteSq(f, e);
  if (opc == S.ADM_DELETE_CQ) return deleteCq(f, e);
  if (opc == S.ADM_SET_FEATURES) return setFeatures(f, e);
  if (opc == S.ADM_GET_FEATURES) return getFeatures(f, e);
  if (opc == S.ADM_DBBUF_CONFIG) return dbbufConfig(f, e);
  return fail(Counter.err_nvme_invalid_opcode, S.S_INVALID_OPCODE);
}

// ---- data transfer to the host: PRPs of the SQE, window-checked ----
function dataOut(f: u32, e: u32, src: u32, len: u32): u32 {
  const r = reqAlloc(f, 0, 0);
  if (r == REQ_NONE) return fail(Counter.err_no_request_slot, S.S_INTERNAL_ERROR);
  const st = prpMap(funcGuest(f), r, load<u64>(e + S.SQE_PRP1), load<u64>(e + S.SQE_PRP2), len);
  if (st == S.S_SUCCESS) segsFill(r, src, len);
  reqFree(r);
  return st;
}

function putAscii(dst: u32, s: string, len: u32): void {
  memory.fill(dst, S.ASCII_SPACE, len);
  const n = min(<u32>s.length, len);
  for (let i: u32 = 0; i < n; i++) store<u8>(dst + i, <u8>s.charCodeAt(i));
}

const MODEL = "wasm-dpu NVMe controller";
const FIRMWARE_REV = "0.1.0";
const SERIAL_PREFIX = "WDPU-F";

function identify(f: u32, e: u32): u32 {
  const cns = load<u32>(e + S.SQE_CDW10) & S.CNS_MASK;
  const nsid = load<u32>(e + S.SQE_NSID);
  const b = scratchAddr(f);
  memory.fill(b, 0, S.IDENTIFY_SIZE);
  if (cns == S.CNS_CONTROLLER) identifyController(f, b);
  else if (cns == S.CNS_NAMESPACE) {
    if (nsid != S.NSID_ONE) return fail(Counter.err_nvme_invalid_namespace, S.S_INVALID_NAMESPACE);
    identifyNamespace(f, b);
  } else if (cns == S.CNS_ACTIVE_NS_LIST) {
    if (nsid >= S.NSID_FIRST_INVALID_LIST) return fail(Counter.err_nvme_invalid_namespace, S.S_INVALID_NAMESPACE);
    if (nsid < S.NSID_ONE) store<u32>(b, S.NSID_ONE); // NSIDs greater than CDW1.NSID
  } else return fail(Counter.err_nvme_invalid_field, S.S_INVALID_FIELD);
  return dataOut(f, e, b, S.IDENTIFY_SIZE);
}

function identifyController(f: u32, b: u32): void {
  store<u16>(b + S.IDC_VID, <u16>R.NVME_VENDOR_ID);
  store<u16>(b + S.IDC_SSVID, <u16>R.NVME_VENDOR_ID);
  putAscii(b + S.IDC_SN, SERIAL_PREFIX, S.IDC_SN_LEN);
  store<u8>(b + S.IDC_SN + SERIAL_PREFIX.length, <u8>(S.ASCII_ZERO + f / 10));
  store<u8>(b + S.IDC_SN + SERIAL_PREFIX.length + 1, <u8>(S.ASCII_ZERO + f % 10));
  putAscii(b + S.IDC_MN, MODEL, S.IDC_MN_LEN);
  putAscii(b + S.IDC_FR, FIRMWARE_REV, S.IDC_FR_LEN);
  store<u8>(b + S.IDC_MDTS, <u8>R.NVME_MDTS);
  store<u16>(b + S.IDC_CNTLID, <u16>(f + 1));
  store<u32>(b + S.IDC_VER, R.NVME_VS_2_0);
  store<u8>(b + S.IDC_CNTRLTYPE, <u8>S.CNTRLTYPE_IO);
  store<u16>(b + S.IDC_OACS, <u16>S.OACS_DBBUF);
  store<u8>(b + S.IDC_SQES, <u8>((R.NVME_SQES_LOG2 << 4) | R.NVME_SQES_LOG2));
  store<u8>(b + S.IDC_CQES, <u8>((R.NVME_CQES_LOG2 << 4) | R.NVME_CQES_LOG2));
  store<u16>(b + S.IDC_MAXCMD, <u16>(R.NVME_MQES + 1));
  store<u32>(b + S.IDC_NN, 1);
  store<u16>(b + S.IDC_ONCS, <u16>(S.ONCS_DSM | S.ONCS_WRITE_ZEROES));
  store<u8>(b + S.IDC_VWC, <u8>S.VWC_PRESENT_FLUSH_ALL);
  store<u32>(b + S.IDC_SGLS, 0);
}

function identifyNamespace(f: u32, b: u32): void {
  const d = funcDisk(f);
  const blocks = diskBlocks(d);
  store<u64>(b + S.IDN_NSZE, blocks);
  store<u64>(b + S.IDN_NCAP, blocks);
  store<u64>(b + S.IDN_NUSE, blocks);
  store<u8>(b + S.IDN_NLBAF, 0);
  store<u8>(b + S.IDN_FLBAS, 0);
  store<u8>(b + S.IDN_DLFEAT, <u8>S.DLFEAT_READS_ZERO);
  store<u32>(b + S.IDN_LBAF0, diskBlockShift(d) << S.LBAF_LBADS_SHIFT);
}

// ---- queue creation and deletion (§5.4, §5.5, §5.6, §5.7) ----

/** An I/O queue id this controller can hold (granted by Number of Queues when set). */
function ioQid(f: u32, qid: u32): bool {
  if (qid == 0 || qid >= funcQueues(f)) return false;
  const granted = load<u32>(Q.priv(f) + Q.P_NQ_GRANTED);
  return granted == 0 || qid <= granted;
}

/** Card offset of a physically contiguous guest queue, or INVALID (status in `queueStatus`). */
let queueStatus: u32 = 0;
function queueRing(f: u32, e: u32, entryShift: u32, entries: u32): u32 {
  const cc = load<u32>(Q.barAddr(f) + R.NVME_REG_CC);
  const wantShift = entryShift == S.SQE_SHIFT ? R.NVME_CC_IOSQES_SHIFT : R.NVME_CC_IOCQES_SHIFT;
  if (((cc >> wantShift) & R.NVME_CC_QES_MASK) != entryShift) { queueStatus = fail(Counter.err_nvme_invalid_field, S.S_INVALID_FIELD); return INVALID; }
  if (entries < 2 || entries > R.NVME_MQES + 1) { queueStatus = fail(Counter.err_nvme_invalid_queue_size, S.S_INVALID_QSIZE); return INVALID; }
  if ((load<u32>(e + S.SQE_CDW11) & S.CDW11_PC) == 0) { queueStatus = fail(Counter.err_nvme_invalid_field, S.S_INVALID_FIELD); return INVALID; }
  const base = load<u64>(e + S.SQE_PRP1);
  if ((<u32>base & (R.NVME_PAGE - 1)) != 0) { queueStatus = fail(Counter.err_nvme_prp_offset, S.S_PRP_OFFSET_INVALID); return INVALID; }
  const c = translate(funcGuest(f), base, <u64>entries << entryShift);
  if (c == INVALID) queueStatus = fail(Counter.err_nvme_queue_out_of_window, S.S_INVALID_FIELD);
  return c;
}

function createCq(f: u32, e: u32): u32 {
  const cdw10 = load<u32>(e + S.SQE_CDW10);
  const cdw11 = load<u32>(e + S.SQE_CDW11);
  const qid = cdw10 & S.CDW10_QID_MASK;
  if (!ioQid(f, qid) || load<u32>(queueAddr(f, qid) + Q.CQ_ACTIVE) != 0) return fail(Counter.err_nvme_invalid_qid, S.S_INVALID_QID);
  const iv = cdw11 >> S.CQ_CDW11_IV_SHIFT;
  const entries = (cdw10 >> S.CDW10_QSIZE_SHIFT) + 1;
  const ring = queueRing(f, e, S.CQE_SHIFT, entries);
  if (ring == INVALID) return queueStatus;
  if (iv >= MAX_VECTORS) return fail(Counter.err_nvme_invalid_vector, S.S_INVALID_VECTOR);
  cqInit(queueAddr(f, qid), ring, entries, iv, (cdw11 & S.CQ_CDW11_IEN) != 0 ? 1 : 0);
  return S.S_SUCCESS;
}

export function cqInit(c: u32, ring: u32, entries: u32, iv: u32, ien: u32): void {
  memory.fill(c + Q.CQ_ACTIVE, 0, Q.CQ_HALF);
  store<u32>(c + Q.CQ_RING, ring);
  store<u32>(c + Q.CQ_SIZE, entries);
  store<u32>(c + Q.CQ_PHASE, 1); // the first pass writes phase tag 1 (§4.6)
  store<u32>(c + Q.CQ_IV, iv);
  store<u32>(c + Q.CQ_IEN, ien);
  store<u32>(c + Q.CQ_BADHEAD, Q.NO_BAD_HEAD);
  store<u32>(c + Q.CQ_ACTIVE, 1);
}

export function sqInit(f: u32, s: u32, ring: u32, entries: u32, cq: u32): void {
  const a = queueAddr(f, s);
  memory.fill(a, 0, Q.SQ_HALF);
  store<u32>(a + Q.SQ_RING, ring);
  store<u32>(a + Q.SQ_SIZE, entries);
  store<u32>(a + Q.SQ_CQID, cq);
  Q.sqSetState(f, s, Q.SqState.ACTIVE);
  const c = queueAddr(f, cq);
  store<u32>(c + Q.CQ_NSQ, load<u32>(c + Q.CQ_NSQ) + 1);
}

function createSq(f: u32, e: u32): u32 {
  const cdw10 = load<u32>(e + S.SQE_CDW10);
  const qid = cdw10 & S.CDW10_QID_MASK;
  if (!ioQid(f, qid) || Q.sqState(f, qid) != Q.SqState.NONE) return fail(Counter.err_nvme_invalid_qid, S.S_INVALID_QID);
  const cq = load<u32>(e + S.SQE_CDW11) >> S.SQ_CDW11_CQID_SHIFT;
  if (cq == 0 || cq >= MAX_QUEUES || load<u32>(queueAddr(f, cq) + Q.CQ_ACTIVE) == 0) return fail(Counter.err_nvme_cq_invalid, S.S_CQ_INVALID);
  const entries = (cdw10 >> S.CDW10_QSIZE_SHIFT) + 1;
  const ring = queueRing(f, e, S.SQE_SHIFT, entries);
  if (ring == INVALID) return queueStatus;
  sqInit(f, qid, ring, entries, cq);
  return S.S_SUCCESS;
}

function deleteSq(f: u32, e: u32): u32 {
  const qid = load<u32>(e + S.SQE_CDW10) & S.CDW10_QID_MASK;
  const a = queueAddr(f, qid);
  if (!ioQid(f, qid) || Q.sqState(f, qid) == Q.SqState.NONE) return fail(Counter.err_nvme_invalid_qid, S.S_INVALID_QID);
  if (load<u32>(a + Q.SQ_INFLIGHT) != 0) return fail(Counter.err_nvme_queue_busy, S.S_INVALID_QUEUE_DELETION);
  const c = queueAddr(f, load<u32>(a + Q.SQ_CQID));
  store<u32>(c + Q.CQ_NSQ, load<u32>(c + Q.CQ_NSQ) - 1);
  store<u32>(c + Q.CQ_WAITERS, load<u32>(c + Q.CQ_WAITERS) & ~(1 << qid));
  memory.fill(a, 0, Q.SQ_HALF);
  Q.sqSetState(f, qid, Q.SqState.NONE);
  return S.S_SUCCESS;
}

function deleteCq(f: u32, e: u32): u32 {
  const qid = load<u32>(e + S.SQE_CDW10) & S.CDW10_QID_MASK;
  const c = queueAddr(f, qid);
  if (!ioQid(f, qid) || load<u32>(c + Q.CQ_ACTIVE) == 0) return fail(Counter.err_nvme_invalid_qid, S.S_INVALID_QID);
  if (load<u32>(c + Q.CQ_NSQ) != 0 || load<u32>(c + Q.CQ_RESERVED) != 0) return fail(Counter.err_nvme_queue_busy, S.S_INVALID_QUEUE_DELETION);
  memory.fill(c + Q.CQ_ACTIVE, 0, Q.CQ_HALF);
  const p = Q.priv(f);
  store<u32>(p + Q.P_DIRTY, load<u32>(p + Q.P_DIRTY) & ~(1 << qid));
  return S.S_SUCCESS;
}

// ---- features (§5.27) ----

function setFeatures(f: u32, e: u32): u32 {
  const fid = load<u32>(e + S.SQE_CDW10) & S.FEAT_FID_MASK;
  const v = load<u32>(e + S.SQE_CDW11);
  const p = Q.priv(f);
  if (fid == S.FID_NUMBER_OF_QUEUES) {
    const nsq = v & S.NQ_MASK, ncq = v >> S.NQ_NCQ_SHIFT;
    if (nsq == S.NQ_UNLIMITED_REQ || ncq == S.NQ_UNLIMITED_REQ) return fail(Counter.err_nvme_invalid_field, S.S_INVALID_FIELD);
    const most = max<u32>(funcQueues(f), 2) - 1;
    const granted = min(min(nsq, ncq) + 1, most);
    store<u32>(p + Q.P_NQ_GRANTED, granted);
    adminDw0 = (granted - 1) | ((granted - 1) << S.NQ_NCQ_SHIFT);
  } else if (fid == S.FID_INTERRUPT_COALESCING) {
    store<u32>(p + Q.P_COALESCE, v & S.COAL_FEATURE_MASK);
    const thr = (v & S.COAL_THR_MASK) + 1;
    const ns = ((v >> S.COAL_TIME_SHIFT) & S.COAL_TIME_MASK) * S.COAL_TIME_UNIT_NS;
    // Applies to I/O completion queues only; vector 0 carries the admin CQ (§5.27.1.8).
    for (let iv: u32 = 1; iv < MAX_VECTORS; iv++) irqSetCoalescing(f, iv, thr, ns);
  } else if (fid == S.FID_VOLATILE_WRITE_CACHE) {
    store<u32>(p + Q.P_VWC, v & 1);
  } else return fail(Counter.err_nvme_invalid_field, S.S_INVALID_FIELD);
  return S.S_SUCCESS;
}

function getFeatures(f: u32, e: u32): u32 {
  const fid = load<u32>(e + S.SQE_CDW10) & S.FEAT_FID_MASK;
  const p = Q.priv(f);
  if (fid == S.FID_NUMBER_OF_QUEUES) {
    const g = load<u32>(p + Q.P_NQ_GRANTED);
    const n = (g != 0 ? g : max<u32>(funcQueues(f), 2) - 1) - 1;
    adminDw0 = n | (n << S.NQ_NCQ_SHIFT);
  } else if (fid == S.FID_INTERRUPT_COALESCING) adminDw0 = load<u32>(p + Q.P_COALESCE);
  else if (fid == S.FID_VOLATILE_WRITE_CACHE) adminDw0 = load<u32>(p + Q.P_VWC);
  else return fail(Counter.err_nvme_invalid_field, S.S_INVALID_FIELD);
  return S.S_SUCCESS;
}

// ---- Doorbell Buffer Config (§5.9): shadow doorbells and EventIdx pages in guest RAM ----
function dbbufConfig(f: u32, e: u32): u32 {
  const g = funcGuest(f);
  const sh = load<u64>(e + S.SQE_PRP1);
  const ev = load<u64>(e + S.SQE_PRP2);
  const pm: u32 = R.NVME_PAGE - 1;
  if ((<u32>sh & pm) != 0 || (<u32>ev & pm) != 0) return fail(Counter.err_nvme_prp_offset, S.S_INVALID_FIELD);
  const shc = translate(g, sh, R.NVME_PAGE);
  const evc = translate(g, ev, R.NVME_PAGE);
  if (shc == INVALID || evc == INVALID) return fail(Counter.err_nvme_prp_out_of_window, S.S_INVALID_FIELD);
  // Start the shadow copies from the doorbells' current values so no queue jumps.
  const db = Q.barAddr(f) + R.NVME_DB_BASE;
  memory.copy(shc, db, 2 * MAX_QUEUES * R.NVME_DB_STRIDE);
  memory.copy(evc, db, 2 * MAX_QUEUES * R.NVME_DB_STRIDE);
  const p = Q.priv(f);
  store<u32>(p + Q.P_DBBUF_SHADOW, shc);
  store<u32>(p + Q.P_DBBUF_EVENT, evc);
  return S.S_SUCCESS;
}

/** Controller enable (CC.EN 0→1): the admin queue from AQA/ASQ/ACQ. 0 = ready, else fatal. */
export function controllerEnable(f: u32): u32 {
  const bar = Q.barAddr(f);
  const cc = load<u32>(bar + R.NVME_REG_CC);
  const g = funcGuest(f);
  if (((cc >> R.NVME_CC_CSS_SHIFT) & R.NVME_CC_CSS_MASK) != 0 || ((cc >> R.NVME_CC_MPS_SHIFT) & R.NVME_CC_MPS_MASK) != 0 ||
    ((cc >> R.NVME_CC_AMS_SHIFT) & R.NVME_CC_AMS_MASK) != 0) return fatal(); // NVM set, 4 KiB pages, round robin
  const aqa = load<u32>(bar + R.NVME_REG_AQA);
  const sqn = (aqa & R.NVME_AQA_ASQS_MASK) + 1;
  const cqn = ((aqa >> R.NVME_AQA_ACQS_SHIFT) & R.NVME_AQA_ASQS_MASK) + 1;
  if (sqn < 2 || cqn < 2 || sqn > R.NVME_MQES + 1 || cqn > R.NVME_MQES + 1) return fatal();
  const asq = load<u64>(bar + R.NVME_REG_ASQ);
  const acq = load<u64>(bar + R.NVME_REG_ACQ);
  if (((<u32>asq | <u32>acq) & (R.NVME_PAGE - 1)) != 0) return fatal();
  const sqc = translate(g, asq, <u64>sqn << S.SQE_SHIFT);
  const cqc = translate(g, acq, <u64>cqn << S.CQE_SHIFT);
  if (sqc == INVALID || cqc == INVALID) { count(Counter.err_nvme_queue_out_of_window); return fatal(); }
  cqInit(queueAddr(f, 0), cqc, cqn, 0, 1);
  sqInit(f, 0, sqc, sqn, 0);
  store<u32>(funcAddr(f) + FUNC_ENABLED_OFF, 1);
  return 0;
}

function fatal(): u32 { count(Counter.err_nvme_controller_fatal); return 1; }
