// The classic-script variant is generated from the module and works through
// <script src>; both files stay small.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";
import { classic } from "../build.mjs";
import { measure } from "../size.mjs";
import { FakeClock, FakeNet } from "../testing/fake.js";

const read = (f) => readFileSync(new URL("../" + f, import.meta.url), "utf8");

test("wasmgate.global.js is up to date with wasmgate.js (run: node web/build.mjs)", () => {
  assert.equal(read("wasmgate.global.js"), classic(read("wasmgate.js")));
});

test("the classic script defines window.wasmgate and works without modules", () => {
  const clock = new FakeClock();
  const net = new FakeNet(clock);
  // A browser-like global: window === globalThis, no module system.
  const win = vm.createContext({ WebSocket: net.WebSocket, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout });
  vm.runInContext("var window = globalThis;", win);
  vm.runInContext(read("wasmgate.global.js"), win, { filename: "wasmgate.global.js" });
  const wg = vm.runInContext("window.wasmgate", win);
  assert.equal(typeof wg.connect, "function");
  assert.equal(wg.isFinalClose(4001), true);
  assert.equal(vm.runInContext("typeof connect", win), "undefined", "nothing else leaks into the page's globals");
  const gw = wg.connect("ws://gw.test/notify");
  let id = null;
  gw.on("init", (e) => (id = e.clientId));
  clock.flush();
  net.last.serverSend('{"type":"init","client_id":"00000000a3f1c2d40001"}');
  assert.equal(id, "00000000a3f1c2d40001");
});

test("the module has no imports (no runtime dependencies)", () => {
  assert.doesNotMatch(read("wasmgate.js"), /^\s*import\b|\brequire\(/m);
});

test("size: unminified under 16 KB; minified under 8 KB when terser is installed", async (t) => {
  for (const f of ["wasmgate.js", "wasmgate.global.js"]) {
    const n = Buffer.byteLength(read(f));
    assert.ok(n < 16384, `${f} is ${n} bytes`);
  }
  const m = await measure();
  if (!m) {
    t.skip("terser not installed: node web/size.mjs installs it into web/node_modules");
    return;
  }
  for (const [f, s] of Object.entries(m)) {
    t.diagnostic(`${f}: ${s.raw} bytes, ${s.min} minified, ${s.gzip} minified+gzip`);
    assert.ok(s.min < 8192, `${f} minifies to ${s.min} bytes`);
  }
});
