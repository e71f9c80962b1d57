// Behaviour of the client against a fake WebSocket and a fake clock: the
// back-off, the close-code policy, the queue, init, JSON safety and pings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, isFinalClose, defaults } from "../wasmgate.js";
import { FakeClock, FakeNet, fakeOpts, record } from "../testing/fake.js";

function setup(extra, before) {
  const clock = new FakeClock();
  const net = new FakeNet(clock);
  if (before) before(net);
  const gw = connect("ws://gw.test/chat", fakeOpts(clock, net, extra));
  const log = record(gw);
  return { clock, net, gw, log, events: (n) => log.filter((e) => e[0] === n).map((e) => e[1]) };
}

test("back-off grows by factor and stops at maxDelay while the server is down", () => {
  // random just below 1 puts every delay at the top of its window.
  const { clock, net, events } = setup({ random: () => 0.999999, minDelay: 100, maxDelay: 2000, factor: 2 });
  net.up = false;
  clock.advance(100000);
  const r = events("reconnecting");
  assert.ok(r.length > 10, "kept retrying: " + r.length);
  assert.deepEqual(r.slice(0, 8).map((e) => e.attempt), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(r.slice(0, 8).map((e) => e.delay), [99, 199, 399, 799, 1599, 1999, 1999, 1999]);
  assert.ok(r.every((e) => e.delay < 2000 && e.code === 1006));
});

test("full jitter: a delay is anywhere in [0, window)", () => {
  for (const [rnd, want] of [[0, 0], [0.5, 2000], [0.999999, 3999]]) {
    const seq = [0.5, 0.5, rnd];
    const { clock, net, events } = setup({ random: () => (seq.length ? seq.shift() : 0.5), minDelay: 1000, factor: 2 });
    net.up = false;
    clock.advance(500); // attempt 1 (after 500 of 1000) fails
    clock.advance(1000); // attempt 2 (after 1000 of 2000) fails: window 4000 next
    assert.equal(events("reconnecting")[2].delay, want);
  }
});

test("the back-off resets only after a connection stayed up resetAfter ms", () => {
  const { clock, net, gw, events } = setup({ random: () => 0.5, minDelay: 1000, resetAfter: 5000 });
  // The handler fails every connect at once (1011): no reset, delays grow.
  let failing = 4;
  gw.on("open", () => { if (failing-- > 0) net.last.serverClose(1011, "handler failing"); });
  clock.advance(60000);
  assert.deepEqual(events("reconnecting").map((e) => [e.code, e.attempt, e.delay]), [
    [1011, 1, 500], [1011, 2, 1000], [1011, 3, 2000], [1011, 4, 4000],
  ]);
  assert.equal(gw.state, "open");
  // Up for 5 s, then dropped: back to attempt 1.
  clock.advance(5000);
  net.last.serverClose(1006);
  assert.deepEqual(events("reconnecting").at(-1), { attempt: 1, delay: 500, code: 1006 });
});

test("1008 (slow consumer) and 1011 (handler failing) retry with back-off", () => {
  for (const code of [1008, 1011]) {
    const { clock, net, gw, events } = setup({ random: () => 0.5 });
    clock.flush();
    net.last.serverClose(code, "x");
    assert.equal(gw.state, "reconnecting");
    net.up = false;
    clock.advance(500); // retry fails: back-off continues
    assert.deepEqual(events("reconnecting").map((e) => [e.code, e.attempt, e.delay]), [[code, 1, 500], [1006, 2, 1000]]);
    net.up = true;
    clock.advance(1000);
    assert.equal(gw.state, "open");
  }
});

test("1001 and 1012 reconnect at once within restartWindow, not by back-off", () => {
  for (const code of [1001, 1012]) {
    const { clock, net, gw, events } = setup({ random: () => 0.999, restartWindow: 3000, minDelay: 100000, maxDelay: 100000 });
    clock.flush();
    net.last.serverClose(code, "restart");
    assert.deepEqual(events("reconnecting"), [{ attempt: 1, delay: 2997, code }]);
    clock.advance(2997);
    assert.equal(gw.state, "open");
    assert.equal(net.sockets.length, 2);
  }
});

test("codes 4000-4099 are final: no reconnect, queue and sends refused", () => {
  for (const code of [4000, 4042, 4099]) {
    const { clock, net, gw, events } = setup();
    clock.flush();
    gw.send("a");
    net.last.serverClose(code, "banned");
    assert.deepEqual(events("close"), [{ code, reason: "banned", wasClean: true, final: true }]);
    assert.equal(events("reconnecting").length, 0);
    assert.equal(gw.state, "closed");
    assert.equal(gw.send("b"), false);
    assert.equal(clock.pending, 0, "no timer left");
    clock.advance(3600000);
    assert.equal(net.sockets.length, 1);
  }
  for (const code of [1000, 3999, 4100, 4999]) {
    const { clock, net, gw, events } = setup();
    clock.flush();
    net.last.serverClose(code);
    assert.equal(events("close")[0].final, false, "code " + code);
    assert.equal(gw.state, "reconnecting");
  }
  assert.equal(isFinalClose(4000) && isFinalClose(4099) && !isFinalClose(3999) && !isFinalClose(4100), true);
});

test("gw.close() stops for good, from any state", () => {
  // While open.
  let s = setup();
  s.clock.flush();
  const ws = s.net.last;
  s.gw.close();
  assert.equal(s.gw.state, "closed");
  assert.deepEqual(s.events("close"), [{ code: 1000, reason: "", wasClean: true, final: true }]);
  s.clock.advance(3600000);
  assert.equal(ws.readyState, 3);
  assert.equal(s.net.sockets.length, 1);
  assert.equal(s.events("close").length, 1, "the socket's own close event is not reported twice");
  // While waiting to reconnect: the pending timer is cancelled.
  s = setup();
  s.clock.flush();
  s.net.last.serverClose(1006);
  s.gw.close();
  assert.equal(s.clock.pending, 0);
  s.clock.advance(3600000);
  assert.equal(s.net.sockets.length, 1);
  // From a close listener.
  s = setup();
  s.gw.on("close", (e) => { if (!e.final) s.gw.close(); });
  s.clock.flush();
  s.net.last.serverClose(1012);
  assert.equal(s.events("reconnecting").length, 0);
  assert.equal(s.clock.pending, 0);
});

test("sends while disconnected queue up to queueSize, overflow is reported, flushed in order first", () => {
  const { clock, net, gw, events } = setup({ queueSize: 3, random: () => 0.01 });
  // Still connecting: queued.
  assert.equal(gw.send("1"), true);
  assert.equal(gw.send({ n: 2 }), true);
  assert.equal(gw.send("3"), true);
  assert.equal(gw.send("4"), false);
  assert.deepEqual(events("overflow"), [{ data: "4", queueSize: 3 }]);
  assert.equal(gw.queued, 3);
  gw.on("open", () => gw.send("from open"));
  clock.flush();
  assert.deepEqual(net.last.sent, ["1", '{"n":2}', "3", "from open"]);
  assert.equal(gw.queued, 0);
  // Open: straight out.
  assert.equal(gw.send("5"), true);
  // Dropped: queued for the next connection, in order.
  net.last.serverClose(1006);
  net.up = false;
  for (const m of ["6", "7", "8", "9"]) gw.send(m);
  assert.equal(events("overflow").length, 2);
  clock.advance(10); // attempt 1 fails (delay 10)
  net.up = true;
  clock.advance(20);
  assert.equal(gw.state, "open");
  assert.deepEqual(net.last.sent, ["6", "7", "8", "from open"]);
  assert.deepEqual(net.sockets[0].sent, ["1", '{"n":2}', "3", "from open", "5"]);
});

test("queueSize 0 queues nothing; binary data is sent as is", () => {
  const { clock, net, gw, events } = setup({ queueSize: 0 });
  assert.equal(gw.send("x"), false);
  assert.equal(events("overflow").length, 1);
  clock.flush();
  const buf = new Uint8Array([1, 2, 3]);
  gw.send(buf);
  assert.equal(net.last.sent[0], buf);
});

test("init sets clientId and fires again after every reconnect", () => {
  const { clock, net, gw, events } = setup({ random: () => 0 });
  clock.flush();
  assert.equal(gw.clientId, null);
  net.last.serverSend('{"type":"init","client_id":"00000000a3f1c2d40001"}');
  assert.equal(gw.clientId, "00000000a3f1c2d40001");
  net.last.serverClose(1012);
  assert.equal(gw.clientId, null, "an old client_id is gone with its connection");
  clock.advance(0);
  net.last.serverSend('{"type":"init","client_id":"00000000a3f1c2d40007"}');
  assert.equal(gw.clientId, "00000000a3f1c2d40007");
  assert.deepEqual(events("init").map((e) => e.clientId), ["00000000a3f1c2d40001", "00000000a3f1c2d40007"]);
  assert.equal(events("open").length, 2);
  // init is also an ordinary message, for pages that switch on type.
  assert.equal(events("message").filter((m) => m.data.type === "init").length, 2);
});

test("messages: JSON parsed without eval, bad JSON arrives raw, binary as is", () => {
  const { clock, net, events } = setup();
  clock.flush();
  globalThis.__pwned = false;
  const hostile = [
    '{"type":"say"',
    "(function(){globalThis.__pwned=true})()",
    "({type:'say'})",
    "",
    '{"__proto__":{"polluted":1}}',
  ];
  for (const t of hostile) net.last.serverSend(t);
  net.last.serverSend('{"type":"say","text":"hi"}');
  const bin = new Uint8Array([0, 1, 255]).buffer;
  net.last.serverSend(bin);
  const m = events("message");
  assert.equal(m.length, hostile.length + 2);
  for (let i = 0; i < 4; i++) assert.deepEqual(m[i], { data: hostile[i], text: hostile[i], binary: null, json: false });
  assert.equal(globalThis.__pwned, false);
  assert.equal(m[4].json, true);
  assert.equal({}.polluted, undefined, "no prototype pollution");
  assert.deepEqual(m[5], { data: { type: "say", text: "hi" }, text: '{"type":"say","text":"hi"}', binary: null, json: true });
  assert.deepEqual(m[6], { data: bin, text: null, binary: bin, json: false });
});

test("the source never evaluates strings", async () => {
  const { readFileSync } = await import("node:fs");
  const src = readFileSync(new URL("../wasmgate.js", import.meta.url), "utf8");
  assert.doesNotMatch(src, /\beval\s*\(|new Function|Function\s*\(/);
});

test('{"type":"ping"} is answered with the pong and not surfaced', () => {
  let s = setup();
  s.clock.flush();
  s.net.last.serverSend('{"type":"ping"}');
  assert.deepEqual(s.net.last.sent, ['{"type":"pong"}']);
  assert.equal(s.events("message").length, 0);
  // pong: null ignores the ping.
  s = setup({ pong: null });
  s.clock.flush();
  s.net.last.serverSend('{"type":"ping"}');
  assert.deepEqual(s.net.last.sent, []);
  assert.equal(s.events("message").length, 0);
  // A custom pong, and pings surfaced on request.
  s = setup({ pong: "PONG", pingEvents: true });
  s.clock.flush();
  s.net.last.serverSend('{"type":"ping"}');
  assert.deepEqual(s.net.last.sent, ["PONG"]);
  assert.equal(s.events("message")[0].data.type, "ping");
});

test("a handshake that never finishes is abandoned after connectTimeout", () => {
  const { clock, net, gw, events } = setup({ connectTimeout: 4000, random: () => 0.5 }, (net) => (net.hang = true));
  clock.advance(3999);
  assert.equal(gw.state, "connecting");
  clock.advance(1);
  assert.deepEqual(events("close")[0], { code: 1006, reason: "connect timeout", wasClean: false, final: false });
  assert.deepEqual(events("reconnecting")[0], { attempt: 1, delay: 500, code: 1006 });
  net.hang = false;
  clock.advance(500);
  assert.equal(gw.state, "open");
  assert.equal(net.sockets[0].readyState >= 2, true, "the stuck socket was closed");
});

test("close and reconnecting carry code and reason; off removes listeners", () => {
  const { clock, net, gw, events } = setup({ random: () => 0.25 });
  let calls = 0;
  const f = () => calls++;
  gw.on("message", f);
  clock.flush();
  net.last.serverSend("a");
  gw.off("message", f);
  net.last.serverSend("b");
  assert.equal(calls, 1);
  net.last.serverClose(1000, "bye");
  assert.deepEqual(events("close"), [{ code: 1000, reason: "bye", wasClean: true, final: false }]);
  assert.deepEqual(events("reconnecting"), [{ attempt: 1, delay: 250, code: 1000 }]);
});

test("a throwing listener does not break the client or other listeners", () => {
  const errors = [];
  const { clock, net, gw, events } = setup({ onError: (e) => errors.push(e.message) });
  gw.on("message", () => { throw new Error("page bug"); });
  let after = 0;
  gw.on("message", () => after++);
  clock.flush();
  net.last.serverSend('{"type":"init","client_id":"1"}');
  assert.deepEqual(errors, ["page bug"]);
  assert.equal(after, 1);
  assert.equal(gw.clientId, "1");
  assert.equal(events("message").length, 1);
});

test("bad input gets errors that name the problem", () => {
  const clock = new FakeClock();
  const net = new FakeNet(clock);
  const o = (x) => fakeOpts(clock, net, x);
  assert.throws(() => connect("ws://x", o({ minDelay: -1 })), /option minDelay must be a number >= 0/);
  assert.throws(() => connect("ws://x", o({ minDelay: 0 })), /option minDelay must be > 0/);
  assert.throws(() => connect("ws://x", o({ queueSize: "10" })), /option queueSize/);
  assert.throws(() => connect("ws://x", o({ factor: 0.5 })), /option factor must be a number >= 1/);
  assert.throws(() => connect("ws://x", o({ minDelay: 10, maxDelay: 5 })), /maxDelay \(5\) is below minDelay \(10\)/);
  assert.throws(() => connect("ws://x", { WebSocket: null, setTimeout: clock.setTimeout }), /no WebSocket constructor/);
  const gw = connect("ws://x", o());
  assert.throws(() => gw.on("mesage", () => {}), /unknown event "mesage"/);
  assert.throws(() => gw.on("open"), /not a function/);
  assert.throws(() => (defaults.minDelay = 1), TypeError, "defaults are frozen");
});

test("a constructor error on the first connect is thrown to the page", () => {
  const clock = new FakeClock();
  const bad = class {
    constructor(url) {
      throw new SyntaxError("invalid URL: " + url);
    }
  };
  assert.throws(() => connect("not a url", { WebSocket: bad, setTimeout: clock.setTimeout }), /invalid URL: not a url/);
});
