// as-echo: sends every message back unchanged (text as text, binary as
// binary), with the AssemblyScript SDK (../as/wasmgate.ts). Nothing is
// allocated per message: the message is sent straight from the event buffer.
import { BINARY, Bytes, onMessage, send } from "../as/wasmgate";
export { wasmgate_abi_version, wasmgate_buffer, on_message } from "../as/wasmgate";

onMessage((id: Bytes, msg: Bytes, flags: i32): i32 => {
  let rc = send(id, msg, flags & BINARY);
  return rc < 0 ? 1 : 0;
});
