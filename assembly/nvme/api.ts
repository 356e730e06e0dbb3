// Exported NVMe entry points (setup), called by host/pcie/nvme-pci.ts at register
// writes that change controller state, never per command (DESIGN rule 2).
import { MAX_FUNCS } from "../memmap";
import { funcType, FuncType } from "../pcie/func";
import { controllerEnable } from "./admin";

export function nvmeApiVersion(): u32 { return 2; }

/**
 * CC.EN 0→1 on function f: take the admin queue from AQA/ASQ/ACQ in the BAR register
 * file. Returns 0 when ready, 1 on a configuration the controller cannot run
 * (the device model then sets CSTS.CFS).
 */
export function nvmeEnable(f: u32): u32 {
  if (f >= MAX_FUNCS || funcType(f) != FuncType.NVME) return 1;
  return controllerEnable(f);
}
