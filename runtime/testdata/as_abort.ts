// as_abort: an AssemblyScript fixture (guest-examples/as/wasmgate.ts) whose
// on_message aborts on "boom" (a failed assertion: the SDK's wasmgate_abort
// logs it and traps) and echoes anything else. Built with the SDK's abort
// mapping and without --noAssert; the .wasm is committed (`make guests`
// installs the compiler). From runtime/testdata/:
//
//   ../../guest-examples/as/node_modules/.bin/asc as_abort.ts --runtime stub -O3 \
//     --use abort=../../guest-examples/as/wasmgate/wasmgate_abort -o as_abort.wasm
import { Bytes, onMessage, send } from "../../guest-examples/as/wasmgate";
export { wasmgate_abi_version, wasmgate_buffer, on_message } from "../../guest-examples/as/wasmgate";

onMessage((id: Bytes, msg: Bytes, flags: i32): i32 => {
  assert(!msg.is("boom"), "boom requested");
  return send(id, msg, flags) < 0 ? 1 : 0;
});
