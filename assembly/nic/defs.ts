// Storage-side SmartNIC layouts, shared by the firmware (asc) and the host's storage
// controllers (tsc): constants and enums only. Regions are in memmap.ts (NIC_*).
//
// Per controller k, at NIC_CTRLS + k * NIC_CTRL_SIZE:
//   control block (CB_*), send queue (NIC WQEs, controller → NIC), command ring (NIC →
//   controller: the command capsules of the QPs bound to k), event ring (NIC → controller).
// Ring indexes are free-running u32; slot = index % depth. The producer writes the entry,
// then moves its index; the consumer moves its own index when it is done with the entry.

// ---- NIC globals at NIC_BASE ----
export const NG_FLAGS: u32 = 0; // u32 NGF_* bits
export const NG_DOORBELLS: u32 = 4; // u32: bit k = controller k rang its send queue's doorbell
export const NG_NEXT_CTRL: u32 = 8; // u32: round-robin position of the WQE fetch
export const NG_ON: u32 = 12; // u32: 1 after nicInit (rdmaPoll then runs nicPoll too)
export const NG_RECV_KEY: u32 = 16; // u32: key of the memory region over every target QP's receive buffers
export const NG_NQPS: u32 = 20; // u32: receive buffer sets handed out (NG_RIDX_QPN entries in use)
export const NG_DIF_PENDING: u32 = 24; // u32: DIF failures waiting for their RESPONSE, all controllers (0: nothing to look up)
export const NG_QP_CTRL: u32 = 64; // u8 per QP (MAX_QPS): controller the QP's commands go to, 0xff = none
export const NG_QP_RIDX: u32 = NG_QP_CTRL + 256; // u8 per QP (MAX_QPS): its receive buffer set in NIC_RECV, 0xff = none
export const NG_RIDX_QPN: u32 = NG_QP_RIDX + 256; // u32 per receive buffer set (NIC_MAX_QPS): the QP it belongs to
export const NG_RIDX_GEN: u32 = NG_RIDX_QPN + 32 * 4; // u32 per receive buffer set: bumped each time the set is posted afresh
// A receive buffer's id (RECV work request id, CMD_RECV_SLOT): its index in NIC_RECV | its set's
// generation << 16. An id of an older generation (the QP was connected anew meanwhile) is not reposted.
export const NG_STAGE_KEY: u32 = NG_RIDX_GEN + 32 * 4; // u32 per controller: its staging window's key, kept where no controller writes
export const NG_QP_WOPEN: u32 = NG_STAGE_KEY + 8 * 4; // u8 per QP (MAX_QPS): 1 while an RDMA WRITE message is open (INITIAL sent, TAIL not yet)
export const NG_RIDX_DIF: u32 = NG_QP_WOPEN + 256; // per receive buffer set (its QP): u32 CRC-16 and u32 bytes of the block in progress
// Shared connectors and controller liveness (nic/connector.ts), NGF_CONNECTORS on:
export const NG_NCONN: u32 = 1536; // u32 connectors (1..NIC_MAX_CONNS); a QP's default one is its QPN's hash
export const NG_CONN_KEY: u32 = 1540; // u32 key of the memory region over NIC_CONN (error CQEs, pad packet)
export const NG_SEQ: u32 = 1544; // u32 capsules received (an entry's arrival order)
export const NG_HB_NS: u32 = 1552; // f64 virtual ns without a heartbeat change after which a controller is lost
export const NG_CTRL_STATE: u32 = 1600; // u32 CtrlLink per controller
export const NG_HB_SEEN: u32 = 1632; // u32 per controller: its CB_HEARTBEAT when last read
export const NG_HB_AT: u32 = 1664; // f64 per controller: virtual time of the first poll that found it unchanged, -1 = none yet
export const NG_QP_HOME: u32 = 1792; // u8 per QP: the controller it was bound to (failback goes there)
export const NG_QP_CONN: u32 = 2048; // u8 per QP: its connector
export const NG_QP_QID: u32 = 2304; // u16 per QP: its NVMe-oF queue id (SQID of the responses the connector writes)
export const NG_QP_FB: u32 = 2816; // u8 per QP: 1 while failing back (home's WQEs wait until the standby's are out)
export const NG_STATS: u32 = 3072; // u32 per connector: capsules it took (NIC_MAX_CONNS)
export const NG_QP_OPEN_E: u32 = 3136; // u16 per QP: connector entry + 1 whose RDMA WRITE message is open, 0 = none
export const NIC_MAX_CONNS: u32 = 16;
export const NIC_LOST: u32 = 0xfe; // NG_QP_CTRL: no live controller, the connector answers with errors
export const NGF_CONNECTORS: u32 = 4; // shared connectors: capsules held until answered, failover on a lost controller
/** A controller's link as the NIC sees it (one transition function: connector.ts ctrlMove). */
export enum CtrlLink { OFF = 0, UP = 1, LOST = 2 }
export const RBUF_GEN_SHIFT: u32 = 16;
export const RBUF_INDEX_MASK: u32 = 0xffff;
export const NGF_TAIL_FAST_PATH: u32 = 1; // after a TAIL or SINGLE WQE, send the queue's next WQE before moving on
export const NGF_DIF_CHECK: u32 = 2; // check protection information on data WQEs that carry NWF_DIF
export const NIC_NO_CTRL: u32 = 0xff;

// ---- per-controller region layout (offsets from the controller's base) ----
export const NC_BLOCK: u32 = 0; // control block, NIC_CTRL_BLOCK bytes
export const NC_SQ: u32 = 0x100; // NIC_SQ_DEPTH × NW_SIZE
export const NC_CMD: u32 = NC_SQ + 1024 * 64; // NIC_CMD_DEPTH × CMD_SIZE
export const NC_EVT: u32 = NC_CMD + 1024 * 32; // NIC_EVT_DEPTH × EV_SIZE

// Control block words (u32).
export const CB_ON: u32 = 0; // 1 once nicCtrlEnable(k)
export const CB_SQ_TAIL: u32 = 4; // controller: WQEs written
export const CB_SQ_HEAD: u32 = 8; // NIC: WQEs fetched
export const CB_CMD_PROD: u32 = 12; // NIC: command capsules delivered
export const CB_CMD_CONS: u32 = 16; // controller: command capsules taken (their receive buffers go back to the QP)
export const CB_EVT_PROD: u32 = 20; // NIC: events written
export const CB_EVT_CONS: u32 = 24; // controller: events read
export const CB_DIF_FAILED: u32 = 28; // NIC: 1 while a DIF failure waits for the RESPONSE of CB_DIF_CID
export const CB_DIF_CID: u32 = 32; // NIC: CID whose response must carry the guard check error
export const CB_DIF_QPN: u32 = 36; // NIC: ... on this QP
export const CB_DIF_STATUS: u32 = 40; // NIC: NVMe status (nvmeof/defs.ts S_E2E_*) of the last DIF failure
export const CB_CMD_DONE: u32 = 44; // NIC: consumed command entries whose receive buffers went back to their QP
export const CB_STAGE_KEY: u32 = 48; // NIC: key of the memory region over the staging window (its VA = its card offset); a copy, NG_STAGE_KEY is the one used
// Failures waiting for their command's RESPONSE — a DIF check that failed, or a data WQE the NIC
// refused (CB_DIF_FAILED counts them; CID/QPN/STATUS above name the latest): NIC_DIF_SLOTS u32
// entries, 0 = free, else DIF_E_VALID | kind | QPN << 16 | CID.
export const CB_DIF_TABLE: u32 = 64;
export const CB_HEARTBEAT: u32 = 128; // controller: bumped by every step; the NIC declares it lost when it stops changing
export const NIC_DIF_SLOTS: u32 = 16;
export const DIF_E_VALID: u32 = 0x80000000;
export const DIF_E_REFTAG: u32 = 0x40000000; // the reference tag failed (else the guard)
export const DIF_E_XFER: u32 = 0x20000000; // a data WQE of the command was refused: its data never went out whole

// ---- NIC WQE, NW_SIZE bytes, written by a controller into its send queue ----
export const NW_SIZE: u32 = 64;
export const NW_TYPE: u32 = 0; // u8 NicWqeType
export const NW_FLAGS: u32 = 1; // u8 NWF_*
export const NW_CID: u32 = 2; // u16 CID of the NVMe command this WQE serves
export const NW_QPN: u32 = 4; // u32 target QP (must be bound to this controller)
export const NW_STAGE_OFF: u32 = 8; // u32 offset of the payload in the controller's staging window
export const NW_LEN: u32 = 12; // u32 payload bytes of this packet (RESPONSE: 16; READ: the whole transfer)
export const NW_RADDR: u32 = 16; // u64 host VA of the message's first byte (the command's keyed SGL address)
export const NW_RKEY: u32 = 24; // u32 host R_Key (the keyed SGL key)
export const NW_TOTAL: u32 = 28; // u32 bytes of the whole message (RETH DMA length of INITIAL / SINGLE / READ)
// DIF (NWF_DIF): a block may span packets of one message (path MTU below the block size, or
// packets not cut at block boundaries): the NIC carries the CRC of a block's bytes seen so far
// to the message's next packet, and checks each block in the packet where it ends. The message
// starts (INITIAL / SINGLE) and ends (TAIL / SINGLE) on block boundaries.
export const NW_PI_OFF: u32 = 32; // u32 offset in the staging window of the PI (8 bytes per block) of the first block that ENDS in this packet
export const NW_REFTAG: u32 = 36; // u32 expected reference tag of that block (Type 1: LBA low 32 bits); the next blocks' follow
export const NW_BLOCK: u32 = 40; // u32 block size of the DIF check: a power of two, 512 .. 4096
export const NW_TAG: u32 = 44; // u32 controller's cookie, returned in its events
export const NW_CONN: u32 = 48; // u32 the command entry's CMD_RECV_SLOT (its connector entry; with NGF_CONNECTORS every WQE must name one)
export const NWF_DIF: u32 = 1; // check the packet's data against its protection information
export const NWF_SIGNALED: u32 = 2; // report an EvKind.SENT event once the packet is acknowledged
export const NW_RESPONSE_LEN: u32 = 16; // a RESPONSE sends exactly one NVMe CQE (NVMe-oF 1.1 §2.2 response capsule)

/**
 * What packet a NIC WQE schedules: the initial, intermediate, tail or single packet of an
 * I/O's data (RDMA WRITE FIRST / MIDDLE / LAST / ONLY to the host), the response capsule
 * (SEND ONLY of a 16-byte CQE), or an RDMA READ of the host's write data into staging.
 */
export enum NicWqeType { INITIAL = 0, INTERMEDIATE = 1, TAIL = 2, SINGLE = 3, RESPONSE = 4, READ = 5 }

// ---- command ring entry, CMD_SIZE bytes (NIC → controller) ----
export const CMD_SIZE: u32 = 32;
export const CMD_QPN: u32 = 0; // u32 target QP the capsule came on
export const CMD_CAPSULE: u32 = 4; // u32 card offset of the capsule (SQE, then in-capsule data) in NIC_RECV
export const CMD_LEN: u32 = 8; // u32 capsule bytes received
export const CMD_RECV_SLOT: u32 = 12; // u32 receive buffer id (index | generation << RBUF_GEN_SHIFT; goes back to the QP once consumed, or with NGF_CONNECTORS once answered)
export const CMD_FLAGS: u32 = 16; // u32 CMDF_*
export const CMD_SKIP: u32 = 20; // u32 re-delivered: data packets of it already sent (the NIC skips that many of its data WQEs)
export const CMDF_REDELIVERED: u32 = 1; // taken over from a lost controller

// ---- shared connector entry, NIC_CONN_ENTRY bytes, one per receive buffer (memmap NIC_CONN_BASE) ----
export const CE_STATE: u32 = 0; // u8 ConnStage
export const CE_OWNER: u32 = 1; // u8 controller that holds the command (NIC_LOST: the connector answers it)
export const CE_CID: u32 = 2; // u16
export const CE_ID: u32 = 4; // u32 receive buffer id (index | generation)
export const CE_LEN: u32 = 8; // u32 capsule bytes
export const CE_SEQ: u32 = 12; // u32 arrival order
export const CE_SENT: u32 = 16; // u32 data bytes sent (RDMA WRITE packets posted)
export const CE_PKTS: u32 = 20; // u16 data packets sent
export const CE_SKIP: u32 = 22; // u16 data WQEs still to skip (re-delivered)
export const CE_TOTAL: u32 = 24; // u32 bytes of the data message (NW_TOTAL)
/**
 * Stage of a command in its connector (issue 4 item 2): RECEIVED (handed to a controller),
 * DATA (k of n packets of its RDMA WRITE sent; CE_PKTS / CE_SENT say how far), READ_ISSUED /
 * READ_DONE (its host data being read / in staging), RESPONSE_PENDING (response posted, not yet
 * acknowledged), DONE (answered: the entry is free, its receive buffer back on the QP).
 */
export enum ConnStage { DONE = 0, RECEIVED = 1, DATA = 2, READ_ISSUED = 3, READ_DONE = 4, RESPONSE_PENDING = 5 }

// ---- event ring entry, EV_SIZE bytes (NIC → controller) ----
export const EV_SIZE: u32 = 16;
export const EV_TAG: u32 = 0; // u32 the WQE's NW_TAG
export const EV_KIND: u32 = 4; // u32 EvKind
export const EV_STATUS: u32 = 8; // u32 0, or the WcStatus / Counter of the failure
export const EV_QPN: u32 = 12; // u32
/**
 * SENT: a signaled WQE's packet was acknowledged. READ_DONE: a READ's data is in staging.
 * ERROR: a WQE failed, EV_STATUS = the RC WcStatus, or the Counter (err_nic_*) of a WQE refused
 * at fetch. DIF_ERROR: a RESPONSE went out carrying the DIF failure, EV_STATUS = its NVMe status.
 */
export enum EvKind { SENT = 0, READ_DONE = 1, ERROR = 2, DIF_ERROR = 3 }
