package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fasthttp/websocket"
)

// The `push` subcommand: 1,000 WebSocket clients on /notify receive pushes a
// backend sends through the text port or the HTTP API, in one of these modes:
//
//	throughput   one text-port connection, pipelined sendToClient round-robin,
//	             at most -inflight (20,000) unanswered requests
//	paced        -rate pushes/s from one connection, written every -tick
//	inflight     exactly -inflight (1,000) pushes in flight on one connection
//	connperpush  -workers goroutines each dial, send one seed-form line
//	             {"uid":…,"data":…}, read ok, close; then a burst of -burst
//	             simultaneous dials
//	http         -workers keep-alive connections POSTing /api/sendToUid
//	httpbatch    -workers keep-alive connections POSTing /api/batch with
//	             -batch sendToUid each
//
// Every push carries "<seq> <ns since start>" as its data (the seed form's
// frame is the whole line, whose "data" holds it): the clients count what
// they receive, check that each client's sequence numbers increase, and
// record the push→client latency. After -warmup the measured window of
// -duration starts; the command prints "MARK begin" and "MARK end" at its
// edges (the orchestrator reads the server's CPU time there), then one JSON
// line (pushResult) once every acknowledged push has arrived or -drain has
// passed.

// pushSpec is one push run.
type pushSpec struct {
	mode             string
	ws, text, admin  string
	clients          int
	warmup, duration time.Duration
	drain            time.Duration
	inflight, rate   int
	tick             time.Duration
	workers, batch   int
	burst, sources   int
	dialTimeout      time.Duration
}

// pushResult is the JSON line `push` prints. Latencies are in µs.
type pushResult struct {
	Mode    string  `json:"mode"`
	Clients int     `json:"clients"`
	Seconds float64 `json:"seconds"`
	Note    string  `json:"note,omitempty"`

	// In the window: acknowledged pushes and requests (a batch, a
	// connection or a line is one request).
	Pushes       uint64  `json:"pushes"`
	PushesPerS   float64 `json:"pushes_per_s"`
	Requests     uint64  `json:"requests"`
	RequestsPerS float64 `json:"requests_per_s"`

	// Request → answer, and push → client, for pushes sent in the window.
	AckP50us  float64 `json:"ack_p50_us"`
	AckP99us  float64 `json:"ack_p99_us"`
	AckP999us float64 `json:"ack_p999_us"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	MaxUs     float64 `json:"max_us"`
	Samples   uint64  `json:"samples"`

	// Exactly-once, over the whole run: pushes acknowledged ok, messages
	// received, and per client the shortfall, the excess, and sequence
	// numbers that did not increase.
	Acked      uint64 `json:"acked"`
	Received   uint64 `json:"received"`
	Missing    uint64 `json:"missing"`
	Extra      uint64 `json:"extra"`
	Duplicates uint64 `json:"duplicates"`
	Failed     uint64 `json:"failed"` // ok:false, "fail", non-200 answers
	Errors     uint64 `json:"errors"` // transport errors
	FirstError string `json:"first_error,omitempty"`

	// CPU time this process (the clients and the backend) used in the window.
	ClientCPUms float64 `json:"client_cpu_ms"`

	// connperpush: dial time (connect) of every push, and of the burst.
	DialP99us     float64 `json:"dial_p99_us,omitempty"`
	DialMaxMs     float64 `json:"dial_max_ms,omitempty"`
	DialErrors    uint64  `json:"dial_errors,omitempty"`
	DialsOver1s   uint64  `json:"dials_over_1s,omitempty"`
	Burst         int     `json:"burst,omitempty"`
	BurstMaxMs    float64 `json:"burst_max_dial_ms,omitempty"`
	BurstAllMs    float64 `json:"burst_all_ms,omitempty"`
	BurstErrors   uint64  `json:"burst_errors,omitempty"`
	BurstOver1s   uint64  `json:"burst_over_1s,omitempty"`
	BurstFailures uint64  `json:"burst_failed,omitempty"`
}

func runPush(args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	var s pushSpec
	fs.StringVar(&s.mode, "mode", "throughput", "throughput, paced, inflight, connperpush, http or httpbatch")
	fs.StringVar(&s.ws, "ws", "", "HOST:PORT of the gateway's WebSocket listener (route /notify)")
	fs.StringVar(&s.text, "text", "", "HOST:PORT of the text port")
	fs.StringVar(&s.admin, "admin", "", "HOST:PORT of the HTTP API")
	fs.IntVar(&s.clients, "clients", 1000, "WebSocket clients")
	fs.DurationVar(&s.warmup, "warmup", time.Second, "warm-up before the measured window")
	fs.DurationVar(&s.duration, "duration", 5*time.Second, "measured window")
	fs.DurationVar(&s.drain, "drain", 10*time.Second, "longest wait for outstanding answers and messages at the end")
	fs.IntVar(&s.inflight, "inflight", 0, "unanswered requests allowed (throughput: 20000, inflight: 1000)")
	fs.IntVar(&s.rate, "rate", 10000, "paced: pushes per second")
	fs.DurationVar(&s.tick, "tick", time.Millisecond, "paced: the pushes due are written and flushed every tick")
	fs.IntVar(&s.workers, "workers", 0, "connperpush: dialing goroutines (16); http: connections (32); httpbatch: connections (8)")
	fs.IntVar(&s.batch, "batch", 100, "httpbatch: sendToUid per request")
	fs.IntVar(&s.burst, "burst", 1000, "connperpush: simultaneous dials after the window (0: none)")
	fs.IntVar(&s.sources, "sources", 19, "connperpush: source addresses 127.0.0.2 … 127.0.0.(1+N)")
	fs.DurationVar(&s.dialTimeout, "dial-timeout", 5*time.Second, "connperpush: connect timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := s.defaults(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.warmup+s.duration+2*s.drain+2*time.Minute)
	defer cancel()
	res, err := runPushMode(ctx, s)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func (s *pushSpec) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	switch s.mode {
	case "throughput":
		def(&s.inflight, 20000)
	case "inflight":
		def(&s.inflight, 1000)
	case "paced":
		def(&s.inflight, 1<<20) // only a bound: paced never waits for answers
	case "connperpush":
		def(&s.workers, 16)
	case "http":
		def(&s.workers, 32)
	case "httpbatch":
		def(&s.workers, 8)
	default:
		return fmt.Errorf("unknown -mode %q", s.mode)
	}
	switch {
	case s.ws == "" || s.text == "":
		return errors.New("need -ws and -text")
	case (s.mode == "http" || s.mode == "httpbatch") && s.admin == "":
		return errors.New("need -admin")
	case s.clients < 1 || s.duration <= 0 || s.rate < 1 || s.tick <= 0 || s.batch < 1:
		return errors.New("need -clients ≥ 1, -duration > 0, -rate ≥ 1, -tick > 0, -batch ≥ 1")
	case s.workers > s.clients:
		return errors.New("-workers must not exceed -clients")
	case s.sources < 1 || s.sources > 250:
		return errors.New("-sources must be 1..250")
	}
	s.burst = min(s.burst, s.clients) // one burst dial per client keeps each client's pushes in order
	return nil
}

// pushClient is one WebSocket client and the bookkeeping of its pushes.
type pushClient struct {
	id  string
	uid string
	ws  *websocket.Conn

	// Sender side, owned by the one goroutine that pushes to this client.
	seq   uint64 // last sequence number sent
	acked uint64 // pushes answered ok (the text port's ack reader, or the worker)

	// Reader side, owned by the reader goroutine until it ends.
	recv     atomic.Uint64
	last     uint64 // last sequence number received
	dups     uint64 // received sequence numbers that did not increase
	hist     histogram
	maxLat   time.Duration
	readErr  error
	closing  atomic.Bool
	received chan struct{} // closed when the reader ends
}

// pushRun is the state one run shares between its goroutines.
type pushRun struct {
	s       pushSpec
	clients []*pushClient
	base    time.Time
	from    time.Duration // the window, as offsets from base
	to      time.Duration
	stop    chan struct{} // closed at base+to: senders stop

	pushes   atomic.Uint64 // acknowledged ok
	requests atomic.Uint64
	failed   atomic.Uint64
	errs     atomic.Uint64
	errOnce  sync.Once
	firstErr string

	ackMu   sync.Mutex
	ackHist histogram
}

func (r *pushRun) now() int64 { return int64(time.Since(r.base)) }

func (r *pushRun) inWindow(ts int64) bool {
	return time.Duration(ts) >= r.from && time.Duration(ts) < r.to
}

func (r *pushRun) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// fail counts a transport error and keeps the first one.
func (r *pushRun) fail(err error) {
	r.errs.Add(1)
	r.errOnce.Do(func() { r.firstErr = err.Error() })
}

// refused counts an answer that was not ok.
func (r *pushRun) refused(answer []byte) {
	r.failed.Add(1)
	r.errOnce.Do(func() { r.firstErr = "answer: " + string(bytes.TrimSpace(answer)) })
}

func runPushMode(ctx context.Context, s pushSpec) (pushResult, error) {
	clients, err := connectPushClients(ctx, s)
	defer closePushClients(clients)
	if err != nil {
		return pushResult{}, err
	}
	if err := bindUids(s.text, clients); err != nil {
		return pushResult{}, err
	}
	r := &pushRun{s: s, clients: clients, base: time.Now(), from: s.warmup, to: s.warmup + s.duration, stop: make(chan struct{})}
	for _, c := range clients {
		go r.readPushes(c)
	}
	var before, after [2]uint64 // pushes, requests at the window's edges
	var cpu0, cpu1 time.Duration
	go func() {
		time.Sleep(time.Until(r.base.Add(r.from)))
		before = [2]uint64{r.pushes.Load(), r.requests.Load()}
		cpu0 = selfCPU()
		fmt.Println("MARK begin")
		time.Sleep(time.Until(r.base.Add(r.to)))
		after = [2]uint64{r.pushes.Load(), r.requests.Load()}
		cpu1 = selfCPU()
		fmt.Println("MARK end")
		close(r.stop)
	}()
	res := pushResult{Mode: s.mode, Clients: s.clients, Seconds: s.duration.Seconds()}
	switch s.mode {
	case "throughput", "inflight", "paced":
		err = r.pipelined(ctx, &res)
	case "connperpush":
		err = r.connPerPush(ctx, &res)
	case "http", "httpbatch":
		err = r.httpPush(ctx, &res)
	}
	if err != nil {
		return res, err
	}
	select { // a mode that ends early (connection lost) still waits for the window
	case <-r.stop:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.Pushes, res.Requests = after[0]-before[0], after[1]-before[1]
	res.PushesPerS = float64(res.Pushes) / s.duration.Seconds()
	res.RequestsPerS = float64(res.Requests) / s.duration.Seconds()
	res.ClientCPUms = float64(cpu1-cpu0) / 1e6
	r.finish(&res)
	return res, nil
}

// finish waits for the clients to receive every acknowledged push (or for
// -drain), closes them, and fills in the exactly-once and latency figures.
func (r *pushRun) finish(res *pushResult) {
	var acked uint64
	for _, c := range r.clients {
		acked += c.acked
	}
	deadline := time.Now().Add(r.s.drain)
	for time.Now().Before(deadline) {
		var got uint64
		for _, c := range r.clients {
			got += c.recv.Load()
		}
		if got >= acked {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // late duplicates, if any, arrive too
	for _, c := range r.clients {
		c.closing.Store(true)
		_ = c.ws.Close()
	}
	var lat histogram
	var maxLat time.Duration
	for _, c := range r.clients {
		<-c.received
		n := c.recv.Load()
		res.Acked += c.acked
		res.Received += n
		if n < c.acked {
			res.Missing += c.acked - n
		} else {
			res.Extra += n - c.acked
		}
		res.Duplicates += c.dups
		lat.merge(&c.hist)
		maxLat = max(maxLat, c.maxLat)
		if c.readErr != nil {
			r.fail(fmt.Errorf("client %s: %w", c.id, c.readErr))
		}
	}
	us := func(h *histogram, q float64) float64 { return float64(h.quantile(q)) / 1e3 }
	res.P50us, res.P99us, res.P999us = us(&lat, 0.50), us(&lat, 0.99), us(&lat, 0.999)
	res.MaxUs, res.Samples = float64(maxLat)/1e3, lat.total
	r.ackMu.Lock()
	res.AckP50us, res.AckP99us, res.AckP999us = us(&r.ackHist, 0.50), us(&r.ackHist, 0.99), us(&r.ackHist, 0.999)
	r.ackMu.Unlock()
	res.Failed, res.Errors, res.FirstError = r.failed.Load(), r.errs.Load(), r.firstErr
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// connectPushClients opens the WebSocket clients on /notify and reads each
// one's client_id from its init message. It returns those it opened, even
// on error.
func connectPushClients(ctx context.Context, s pushSpec) ([]*pushClient, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	url := "ws://" + s.ws + "/notify"
	clients := make([]*pushClient, s.clients)
	errs := dialEach(s.clients, 32, func(i int) error {
		d := sourceDialer(net.IPv4(127, 0, 0, byte(2+i/perSourceIP)), 4096)
		ws, _, err := d.DialContext(ctx, url, nil)
		if err != nil {
			return err
		}
		c := &pushClient{ws: ws, uid: "u" + strconv.Itoa(i), received: make(chan struct{})}
		clients[i] = c
		c.id, err = readInit(ws)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return clients, fmt.Errorf("connect %d clients to %s: %w", s.clients, url, firstErr(errs))
	}
	return clients, nil
}

// readInit reads {"type":"init","client_id":"…"}.
func readInit(ws *websocket.Conn) (string, error) {
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	_, data, err := ws.ReadMessage()
	if err != nil {
		return "", fmt.Errorf("read init: %w", err)
	}
	var m struct {
		Type     string `json:"type"`
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Type != "init" || m.ClientID == "" {
		return "", fmt.Errorf("init message %q is not {\"type\":\"init\",\"client_id\":…}", data)
	}
	return m.ClientID, nil
}

func closePushClients(clients []*pushClient) {
	for _, c := range clients {
		if c != nil {
			c.closing.Store(true)
			_ = c.ws.Close()
		}
	}
}

// bindUids binds client i to uid u<i> through one pipelined text-port
// connection, for the modes that push by uid.
func bindUids(text string, clients []*pushClient) error {
	nc, err := net.DialTimeout("tcp", text, 5*time.Second)
	if err != nil {
		return fmt.Errorf("text port: %w", err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	var buf []byte
	for _, c := range clients {
		buf = append(buf, `{"cmd":"bindUid","client_id":"`...)
		buf = append(buf, c.id...)
		buf = append(buf, `","uid":"`...)
		buf = append(buf, c.uid...)
		buf = append(buf, "\"}\n"...)
	}
	go func() { _, _ = nc.Write(buf) }()
	br := bufio.NewReader(nc)
	for range clients {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("bindUid: %w", err)
		}
		if !bytes.HasPrefix(line, []byte(`{"ok":true`)) {
			return fmt.Errorf("bindUid answered %q", bytes.TrimSpace(line))
		}
	}
	return nil
}

// readPushes is a client's reader: it counts messages, checks that sequence
// numbers increase and records push→client latency for pushes sent in the
// window.
func (r *pushRun) readPushes(c *pushClient) {
	defer close(c.received)
	buf := make([]byte, 512)
	for {
		_, rd, err := c.ws.NextReader()
		if err != nil {
			if !c.closing.Load() {
				c.readErr = err
			}
			return
		}
		n := 0
		for {
			if n == len(buf) {
				buf = append(buf, make([]byte, len(buf))...)
			}
			m, err := rd.Read(buf[n:])
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				if !c.closing.Load() {
					c.readErr = err
				}
				return
			}
		}
		now := r.now()
		seq, ts, ok := parsePayload(buf[:n])
		if !ok {
			c.readErr = fmt.Errorf("unexpected message %q", buf[:n])
			return
		}
		c.recv.Add(1)
		if seq <= c.last {
			c.dups++
		}
		c.last = seq
		if r.inWindow(ts) {
			d := time.Duration(now - ts)
			c.hist.record(d)
			c.maxLat = max(c.maxLat, d)
		}
	}
}

// appendPayload appends "<seq> <ts>".
func appendPayload(dst []byte, seq uint64, ts int64) []byte {
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, ts, 10)
}

// parsePayload reads "<seq> <ts>" from a message: the message itself, or
// the "data" string of a seed-form line pushed whole.
func parsePayload(msg []byte) (seq uint64, ts int64, ok bool) {
	if len(msg) > 0 && msg[0] == '{' {
		_, after, found := bytes.Cut(msg, []byte(`"data":"`))
		if !found {
			return 0, 0, false
		}
		msg, _, found = bytes.Cut(after, []byte{'"'})
		if !found {
			return 0, 0, false
		}
	}
	a, b, found := bytes.Cut(msg, []byte{' '})
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(string(a), 10, 64)
	t, err2 := strconv.ParseInt(string(b), 10, 64)
	return s, t, err1 == nil && err2 == nil
}

// pending is a request written on the pipelined connection and not yet
// answered: which client, and when it was written.
type pending struct {
	client int32
	ts     int64
}

// pipelined runs throughput, inflight and paced on one text-port
// connection: a writer streams sendToClient lines, a reader takes the
// answers in order. The pending channel is both the FIFO that matches an
// answer to its request and the cap on requests in flight.
func (r *pushRun) pipelined(ctx context.Context, res *pushResult) error {
	nc, err := net.DialTimeout("tcp", r.s.text, 5*time.Second)
	if err != nil {
		return fmt.Errorf("text port: %w", err)
	}
	defer nc.Close()
	fifo := make(chan pending, r.s.inflight)
	dead := make(chan struct{}) // the reader gave up
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		r.readAcks(nc, fifo, dead)
	}()
	var werr error
	if r.s.mode == "paced" {
		perTick := float64(r.s.rate) * r.s.tick.Seconds()
		res.Note = fmt.Sprintf("%.0f pushes written and flushed every %s (time.Ticker)", perTick, r.s.tick)
		werr = r.writePaced(nc, fifo, dead)
	} else {
		res.Note = fmt.Sprintf("≤ %d requests in flight", r.s.inflight)
		werr = r.writeCapped(nc, fifo, dead)
	}
	close(fifo)
	if werr != nil {
		r.fail(werr)
	}
	_ = nc.SetReadDeadline(time.Now().Add(r.s.drain))
	select {
	case <-readerDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// writeCapped writes as fast as the cap on requests in flight allows: it
// flushes when the cap is reached (or the buffer fills), so a backlog of
// answers releases a batch of new requests in one write.
func (r *pushRun) writeCapped(nc net.Conn, fifo chan<- pending, dead <-chan struct{}) error {
	bw := bufio.NewWriterSize(nc, 64<<10)
	line := make([]byte, 0, 128)
	for i := 0; !r.stopped(); i = (i + 1) % len(r.clients) {
		p := pending{client: int32(i), ts: r.now()}
		select {
		case fifo <- p:
		default:
			if err := bw.Flush(); err != nil {
				return err
			}
			select {
			case fifo <- p:
			case <-dead:
				return nil
			case <-r.stop:
				return bw.Flush()
			}
			p.ts = r.now()
		}
		line = r.appendSendToClient(line[:0], i, p.ts)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// writePaced writes, every tick, the pushes due by then at -rate, and
// flushes them.
func (r *pushRun) writePaced(nc net.Conn, fifo chan<- pending, dead <-chan struct{}) error {
	t := time.NewTicker(r.s.tick)
	defer t.Stop()
	var line []byte
	start := time.Now()
	sent, i := 0, 0
	for {
		select {
		case <-t.C:
		case <-r.stop:
			return nil
		case <-dead:
			return nil
		}
		due := int(time.Since(start).Seconds()*float64(r.s.rate)) - sent
		line = line[:0]
		for range due {
			p := pending{client: int32(i), ts: r.now()}
			select {
			case fifo <- p:
			default:
				return errors.New("paced: answers fell more than -inflight behind")
			}
			line = r.appendSendToClient(line, i, p.ts)
			i = (i + 1) % len(r.clients)
		}
		sent += due
		if _, err := nc.Write(line); err != nil {
			return err
		}
	}
}

func (r *pushRun) appendSendToClient(dst []byte, i int, ts int64) []byte {
	c := r.clients[i]
	c.seq++
	dst = append(dst, `{"cmd":"sendToClient","client_id":"`...)
	dst = append(dst, c.id...)
	dst = append(dst, `","data":"`...)
	dst = appendPayload(dst, c.seq, ts)
	return append(dst, "\"}\n"...)
}

var okAnswer = []byte(`{"ok":true`)

// readAcks takes one answer per pending request, in order.
func (r *pushRun) readAcks(nc net.Conn, fifo <-chan pending, dead chan<- struct{}) {
	defer close(dead)
	br := bufio.NewReaderSize(nc, 64<<10)
	var h histogram
	defer func() {
		r.ackMu.Lock()
		r.ackHist.merge(&h)
		r.ackMu.Unlock()
	}()
	for p := range fifo {
		line, err := br.ReadSlice('\n')
		if err != nil {
			r.fail(fmt.Errorf("text port answers: %w", err))
			return
		}
		now := r.now()
		r.requests.Add(1)
		if !bytes.HasPrefix(line, okAnswer) {
			r.refused(line)
			continue
		}
		r.clients[p.client].acked++
		r.pushes.Add(1)
		if r.inWindow(p.ts) {
			h.record(time.Duration(now - p.ts))
		}
	}
}
