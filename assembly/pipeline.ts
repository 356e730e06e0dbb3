// Hands a DONE request back to the front end that parsed it, which writes the
// completion (virtio used element + status byte, NVMe CQE) and frees the slot.
import { reqAddr, reqFree, R_FUNC } from "./blk/req";
import { funcType, FuncType } from "./pcie/func";
import { virtioBlkComplete } from "./virtio/blk";
import { nvmeIoComplete } from "./nvme/io";
import { Counter } from "./counters";
import { count } from "./stats";

export function reqComplete(r: u32): void {
  const f = load<u32>(reqAddr(r) + R_FUNC);
  const t = funcType(f);
  count(Counter.requests_completed);
  if (t == FuncType.VIRTIO_BLK) virtioBlkComplete(r);
  else if (t == FuncType.NVME) nvmeIoComplete(r);
  else reqFree(r); // no front end (benchmarks): nothing to write back
}
