package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// connPerPush is a backend that opens one TCP connection per push, as the
// seed's own callback does: dial, write one seed-form line
// {"uid":"u<i>","data":"<seq> <ts>"}, read the bare answer ok, close.
// -workers goroutines do that in a loop until the window ends; worker w
// pushes only to clients w, w+workers, …, so each client's pushes are
// sequential. Then -burst goroutines do it once each, all at the same
// moment, to see whether the listener's backlog absorbs a burst: a SYN
// dropped for a full accept queue shows as a connect of ≥ 1 s (the first
// SYN retransmit).
//
// The client closes first, so the TIME_WAIT states are ours: connections
// come from -sources loopback addresses (127.0.0.2 …), each with its own
// ~28k ephemeral ports, so that at tens of thousands of connections a second
// no source runs out of ports. (The kernel also caps TIME_WAIT states at
// net.ipv4.tcp_max_tw_buckets and drops the excess; no SO_LINGER 0 needed.)
func (r *pushRun) connPerPush(ctx context.Context, res *pushResult) error {
	res.Note = fmt.Sprintf("%d goroutines × (dial, 1 seed-form line, read ok, close) from %d source addresses; listen backlog = somaxconn %s",
		r.s.workers, r.s.sources, readSysctl("net/core/somaxconn"))
	var dials dialStats
	var wg sync.WaitGroup
	for w := range r.s.workers {
		wg.Go(func() {
			var h histogram
			k := w
			for i := w; !r.stopped() && ctx.Err() == nil; i += r.s.workers {
				if i >= len(r.clients) {
					i = w
				}
				r.pushOverConn(i, r.sourceIP(k), &dials, &h)
				k++
			}
			r.ackMu.Lock()
			r.ackHist.merge(&h)
			r.ackMu.Unlock()
		})
	}
	wg.Wait()
	res.DialP99us = float64(dials.hist.quantile(0.99)) / 1e3
	res.DialMaxMs = float64(dials.max) / 1e6
	res.DialErrors, res.DialsOver1s = dials.errs, dials.slow
	if r.s.burst > 0 {
		r.burst(res)
	}
	return nil
}

// burst pushes to clients 0..burst-1 over as many connections opened at
// the same moment.
func (r *pushRun) burst(res *pushResult) {
	var dials dialStats
	failedBefore := r.failed.Load() + r.errs.Load()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for j := range r.s.burst {
		wg.Go(func() {
			<-start
			var h histogram
			r.pushOverConn(j, r.sourceIP(j), &dials, &h)
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	res.Burst = r.s.burst
	res.BurstAllMs = float64(time.Since(t0)) / 1e6
	res.BurstMaxMs = float64(dials.max) / 1e6
	res.BurstErrors, res.BurstOver1s = dials.errs, dials.slow
	res.BurstFailures = r.failed.Load() + r.errs.Load() - failedBefore
}

func (r *pushRun) sourceIP(k int) net.IP {
	return net.IPv4(127, 0, 0, byte(2+k%r.s.sources))
}

// dialStats collects connect times across goroutines.
type dialStats struct {
	mu         sync.Mutex
	hist       histogram
	max        time.Duration
	errs, slow uint64
}

func (d *dialStats) add(took time.Duration, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.errs++
		return
	}
	d.hist.record(took)
	d.max = max(d.max, took)
	if took >= time.Second {
		d.slow++
	}
}

var seedOK = []byte("ok\n")

// pushOverConn does one dial → seed-form line → answer → close to client
// i, recording the connect time in dials and the whole exchange in h.
func (r *pushRun) pushOverConn(i int, src net.IP, dials *dialStats, h *histogram) {
	c := r.clients[i]
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: r.s.dialTimeout}
	ts := r.now()
	nc, err := d.Dial("tcp", r.s.text)
	dials.add(time.Duration(r.now()-ts), err)
	if err != nil {
		r.fail(fmt.Errorf("dial: %w", err))
		time.Sleep(time.Millisecond) // no hot loop when dials fail
		return
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c.seq++
	var buf [128]byte
	line := append(buf[:0], `{"uid":"`...)
	line = append(line, c.uid...)
	line = append(line, `","data":"`...)
	line = appendPayload(line, c.seq, ts)
	line = append(line, "\"}\n"...)
	if _, err := nc.Write(line); err != nil {
		r.fail(fmt.Errorf("write: %w", err))
		return
	}
	n, err := readLine(nc, buf[:])
	if err != nil {
		r.fail(fmt.Errorf("read answer: %w", err))
		return
	}
	r.requests.Add(1)
	if !bytes.Equal(buf[:n], seedOK) {
		r.refused(buf[:n])
		return
	}
	c.acked++
	r.pushes.Add(1)
	if r.inWindow(ts) {
		h.record(time.Duration(r.now() - ts))
	}
}

// readLine reads into buf until a newline.
func readLine(nc net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := nc.Read(buf[n:])
		n += m
		if bytes.IndexByte(buf[:n], '\n') >= 0 {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, fmt.Errorf("answer longer than %d bytes", len(buf))
}

func readSysctl(name string) string {
	data, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(data))
}
