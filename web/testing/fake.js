// Test doubles for the client: a fake clock (timers run only when the test
// advances time) and a fake network whose WebSocket behaves like a browser's
// (events arrive later, never inside the call that caused them).

/** FakeClock orders timers in a binary heap so 10,000 clients stay cheap. */
export class FakeClock {
  constructor() {
    this.t = 0;
    this.heap = [];
    this.seq = 0;
    this.cancelled = new Set();
    this.now = () => this.t;
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this._push({ at: this.t + Math.max(0, ms | 0), id, fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.cancelled.add(id);
    };
  }

  /** Timers still due to run. */
  get pending() {
    return this.heap.filter((x) => !this.cancelled.has(x.id)).length;
  }

  /** Runs every timer due within ms from now, in time order, then sets the clock to now+ms. */
  advance(ms) {
    const end = this.t + ms;
    let n = 0;
    while (this.heap.length && this.heap[0].at <= end) {
      // A client stuck rescheduling at one instant would hang the runner.
      if (++n > 5e6) throw new Error("FakeClock: more than 5e6 timers in one advance: a loop?");
      const x = this._pop();
      if (this.cancelled.delete(x.id)) continue;
      this.t = x.at;
      x.fn();
    }
    this.t = end;
  }

  /** Runs timers already due without moving the clock (zero-delay events). */
  flush() {
    this.advance(0);
  }

  _less(a, b) {
    return a.at < b.at || (a.at === b.at && a.id < b.id);
  }

  _push(x) {
    const h = this.heap;
    h.push(x);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this._less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  _pop() {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this._less(h[l], h[m])) m = l;
        if (r < h.length && this._less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * FakeNet is a server the fake WebSockets connect to. While up, a socket
 * opens after latency ms; while down, it fails with 1006 as a browser does
 * when nothing listens; with hang set, the handshake never finishes.
 */
export class FakeNet {
  constructor(clock) {
    this.clock = clock;
    this.up = true;
    this.hang = false;
    this.latency = 0;
    this.sockets = [];
    this.opens = []; // clock times of successful opens
    const net = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url, protocols) {
        this.url = url;
        this.protocols = protocols;
        this.readyState = 0;
        this.sent = [];
        this.lost = [];
        this.onopen = this.onmessage = this.onclose = null;
        net.sockets.push(this);
        if (net.hang) return;
        net.clock.setTimeout(() => {
          if (this.readyState !== 0) return;
          if (!net.up) return this._fire(1006, "", false);
          this.readyState = 1;
          net.opens.push(net.clock.now());
          if (this.onopen) this.onopen({});
        }, net.latency);
      }

      send(d) {
        if (this.readyState === 0) throw new Error("InvalidStateError: still connecting");
        if (this.readyState !== 1) this.lost.push(d); // browsers drop it silently
        else this.sent.push(d);
      }

      close(code = 1000, reason = "") {
        if (this.readyState >= 2) return;
        this.readyState = 2;
        net.clock.setTimeout(() => this._fire(code, reason, true), 0);
      }

      /** The server sends a text or binary frame. */
      serverSend(data) {
        if (this.readyState === 1 && this.onmessage) this.onmessage({ data });
      }

      /** The server closes the connection with a close frame (or 1006 = dropped). */
      serverClose(code, reason = "") {
        this._fire(code, reason, code !== 1006);
      }

      _fire(code, reason, wasClean) {
        if (this.readyState === 3) return;
        this.readyState = 3;
        if (this.onclose) this.onclose({ code, reason, wasClean });
      }
    };
  }

  /** The newest socket. */
  get last() {
    return this.sockets[this.sockets.length - 1];
  }

  /** Sockets currently open. */
  get open() {
    return this.sockets.filter((s) => s.readyState === 1);
  }
}

/** A small seeded PRNG (mulberry32), so spread tests are reproducible. */
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options wiring a client to the fake clock and network. */
export function fakeOpts(clock, net, extra) {
  return Object.assign(
    {
      WebSocket: net.WebSocket,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      now: clock.now,
      onError: (e) => {
        throw e;
      },
    },
    extra,
  );
}

/** Records every event of a client as [name, event] pairs. */
export function record(gw) {
  const log = [];
  for (const name of ["open", "init", "message", "close", "reconnecting", "overflow"]) {
    gw.on(name, (ev) => log.push([name, ev]));
  }
  return log;
}
