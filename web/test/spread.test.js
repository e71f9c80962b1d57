// 10,000 pages on one fake clock lose the server together; these tests show
// the full jitter spreads their reconnects instead of a thundering herd.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../wasmgate.js";
import { FakeClock, FakeNet, fakeOpts, seeded } from "../testing/fake.js";

const N = 10000;

// herd connects N clients, closes them all at once with code at t=0 and
// keeps the server down for downMs, then returns the successful reconnects
// per one-second bucket (bucket 0 = the first second after the close).
function herd(code, downMs, extra) {
  const clock = new FakeClock();
  const net = new FakeNet(clock);
  const random = seeded(13);
  const gws = [];
  for (let i = 0; i < N; i++) gws.push(connect("ws://gw.test/notify", fakeOpts(clock, net, Object.assign({ random }, extra))));
  clock.advance(60000); // everyone up and stable
  assert.equal(net.open.length, N);
  net.opens.length = 0;
  const t0 = clock.now();
  for (const ws of net.open) ws.serverClose(code, "");
  net.up = downMs === 0;
  if (downMs) {
    clock.advance(downMs);
    net.up = true;
  }
  clock.advance(600000);
  assert.equal(net.open.length, N, "every page came back");
  assert.ok(gws.every((g) => g.state === "open"));
  const buckets = [];
  for (const t of net.opens) {
    const b = Math.floor((t - t0) / 1000);
    buckets[b] = (buckets[b] || 0) + 1;
  }
  return Array.from(buckets, (x) => x || 0);
}

function show(t, name, buckets) {
  const share = buckets.map((n) => ((100 * n) / N).toFixed(1) + "%");
  t.diagnostic(name + ": reconnects per second: " + share.slice(0, 40).join(" ") + (share.length > 40 ? " ..." : ""));
  return Math.max(...buckets) / N;
}

for (const code of [1012, 1001]) {
  test(`${N} pages told ${code} spread their reconnects over restartWindow`, (t) => {
    const b = herd(code, 0);
    const max = show(t, `close ${code}, server back at once`, b);
    assert.equal(b.length, 5, "all back within the 5 s restartWindow");
    // Uniform over 5 s is 20% a second; no second takes much more.
    assert.ok(max <= 0.22, `busiest second holds ${max}`);
    assert.ok(Math.min(...b) / N >= 0.18, "no second is skipped");
  });
}

test(`${N} pages after 1012 while the server takes 3 s to come back`, (t) => {
  const b = herd(1012, 3000);
  const max = show(t, "close 1012, server down 3 s", b);
  assert.equal(b[0] + b[1] + b[2], 0, "nobody connects while it is down");
  // The first tries still due (20% a second) meet the early ones' retries,
  // which grow from restartWindow and so land thinly over the next 10 s.
  assert.ok(max <= 0.3, `busiest second holds ${max}`);
  assert.ok(b.filter((n) => n / N >= 0.02).length >= 8, "retries spread over 8 seconds or more");
});

test(`${N} pages dropped by a crash (1006) while the server is down 10 s`, (t) => {
  const b = herd(1006, 10000);
  const max = show(t, "close 1006, server down 10 s", b);
  assert.equal(b.slice(0, 10).reduce((a, x) => a + x, 0), 0, "nobody connects while it is down");
  assert.ok(max <= 0.2, `busiest second holds ${max}`);
  assert.ok(b.filter((n) => n > 0).length >= 10, "spread over 10 seconds or more");
});

test(`${N} pages after an ordinary close (1000) with the server up: spread over minDelay only`, (t) => {
  // Documented limit: an ordinary close is a per-client event (closeClient,
  // a kick), so its first retry window is minDelay; a page that expects mass
  // ordinary closes raises minDelay. Here minDelay 5 s spreads like a restart.
  const b = herd(1000, 0, { minDelay: 5000 });
  const max = show(t, "close 1000, minDelay 5 s", b);
  assert.ok(max <= 0.22, `busiest second holds ${max}`);
});
