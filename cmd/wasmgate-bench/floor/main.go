// Command floor measures what this machine charges before wasmgate does
// anything: the floors under issue 3's push targets, with no WebSocket, no
// JSON and no gateway, between two processes on loopback.
//
//	floor [-only write|paced|inflight] [-duration 5s] [-warmup 1s] [-conns 1000] [-size 40]
//
// write     CPU per write(2) of a -size frame, round-robin over -conns
//
//	loopback TCP connections whose readers are another process:
//	the getrusage (user+sys) of the writing process over the window,
//	divided by the writes. Unpaced, and paced at -write-rate. Two
//	writers: the raw syscall (through the fd, Go's poller only on
//	EAGAIN) and net.Conn.Write.
//
// paced     -rate messages/s, written every -tick in one write (as the push
//
//	benchmark does), one-way latency send→receive.
//
// inflight  exactly -inflight messages unacknowledged, as fast as that
//
//	allows; one-way latency.
//
// paced and inflight run two topologies:
//
//	direct  A → B over one connection; B timestamps each line and sends back
//	        an ack carrying the one-way latency (acks batched per read).
//	relay   the push benchmark's shape with nothing in the middle: A sends
//	        "idx seq ts" lines on one connection to relay process B, which
//	        writes each line to its client connection idx (one write(2) per
//	        message, from the reading goroutine) and acks it; A's -conns
//	        client readers take the timestamps. B's CPU per message is the
//	        floor for "server CPU per push" of a gateway in Go.
//
// The peer is this binary re-executed with -role. Timestamps are
// CLOCK_REALTIME (time.Now().UnixNano), one clock for both processes.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	only              string
	duration, warmup  time.Duration
	conns, size       int
	writeRate, rate   int
	tick              time.Duration
	inflight          int
	role, addr, addr2 string
}

func main() {
	var c config
	flag.StringVar(&c.only, "only", "", "write, paced or inflight (default: all)")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "measured window per run")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "warm-up before the window")
	flag.IntVar(&c.conns, "conns", 1000, "client connections")
	flag.IntVar(&c.size, "size", 40, "write: frame size in bytes")
	flag.IntVar(&c.writeRate, "write-rate", 300_000, "write: rate of the paced run (0: skip it)")
	flag.IntVar(&c.rate, "rate", 10_000, "paced: messages per second")
	flag.DurationVar(&c.tick, "tick", time.Millisecond, "paced: write the messages due every tick")
	flag.IntVar(&c.inflight, "inflight", 1000, "inflight: unacknowledged messages")
	flag.StringVar(&c.role, "role", "", "internal: sink, direct or relay (the peer process)")
	flag.StringVar(&c.addr, "addr", "", "internal: address the peer dials")
	flag.StringVar(&c.addr2, "addr2", "", "internal: relay's client address")
	flag.Parse()
	var err error
	switch c.role {
	case "":
		err = run(c)
	case "sink":
		err = sink(c)
	case "direct":
		err = directPeer(c)
	case "relay":
		err = relayPeer(c)
	default:
		err = fmt.Errorf("unknown -role %q", c.role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	fmt.Printf("floor: %s, %d conns, %s measured after %s warm-up\n\n", cpuModel(), c.conns, c.duration, c.warmup)
	fmt.Println("| floor | value |")
	fmt.Println("|---|---|")
	if c.only == "" || c.only == "write" {
		rates := []int{0}
		if c.writeRate > 0 {
			rates = append(rates, c.writeRate)
		}
		for _, rate := range rates {
			for _, raw := range []bool{true, false} {
				if err := writeFloor(c, rate, raw); err != nil {
					return err
				}
			}
		}
	}
	for _, mode := range []string{"paced", "inflight"} {
		if c.only != "" && c.only != mode {
			continue
		}
		for _, topo := range []string{"direct", "relay"} {
			if err := latencyFloor(c, mode, topo); err != nil {
				return err
			}
		}
	}
	return nil
}

// peer is the other process.
type peer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startPeer(args ...string) (*peer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &peer{cmd: cmd}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewReader(out)
	return p, cmd.Start()
}

// cpu asks the peer for its user+sys CPU time.
func (p *peer) cpu() (time.Duration, error) {
	if _, err := io.WriteString(p.stdin, "rusage\n"); err != nil {
		return 0, err
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("peer: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	return time.Duration(ns), err
}

func (p *peer) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// servePeer answers "rusage" lines on stdin until it closes.
func servePeer() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Println(int64(selfCPU()))
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stat is the machine's busy and softirq time so far, from the first line
// of /proc/stat (clock ticks of 10 ms). With IRQ time accounting, loopback
// receive processing is charged to softirq, not to the process that wrote.
func stat() (busy, softirq time.Duration) {
	data, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	for i := 1; i < len(f) && i <= 7; i++ { // user nice system idle iowait irq softirq
		if i == 4 || i == 5 {
			continue
		}
		n, _ := strconv.ParseInt(f[i], 10, 64)
		busy += time.Duration(n) * 10 * time.Millisecond
		if i == 7 {
			softirq = time.Duration(n) * 10 * time.Millisecond
		}
	}
	return busy, softirq
}

// snapshot is the CPU time used so far: this process, the peer, the
// machine, and the machine's softirq.
type snapshot struct {
	at                        time.Time
	self, peer, busy, softirq time.Duration
}

func take(p *peer) (s snapshot, err error) {
	s.at = time.Now()
	s.self = selfCPU()
	s.busy, s.softirq = stat()
	s.peer, err = p.cpu()
	return s, err
}

// window is what was used between two snapshots.
type window struct {
	wall                        time.Duration
	self, peer, softirq, others time.Duration
}

func (a snapshot) to(b snapshot) window {
	w := window{wall: b.at.Sub(a.at), self: b.self - a.self, peer: b.peer - a.peer, softirq: b.softirq - a.softirq}
	w.others = max(0, b.busy-a.busy-w.self-w.peer-w.softirq)
	return w
}

func (w window) cores(d time.Duration) float64 { return d.Seconds() / w.wall.Seconds() }

// note describes the machine's CPU use over the window, in cores.
func (w window) note() string {
	return fmt.Sprintf("machine softirq %.2f, other processes %.2f cores", w.cores(w.softirq), w.cores(w.others))
}

// acceptN accepts n connections.
func acceptN(ln net.Listener, n int) ([]*net.TCPConn, error) {
	conns := make([]*net.TCPConn, 0, n)
	for len(conns) < n {
		nc, err := ln.Accept()
		if err != nil {
			return conns, err
		}
		conns = append(conns, nc.(*net.TCPConn))
	}
	return conns, nil
}

// dialN opens n connections to addr.
func dialN(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	for i := range conns {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return conns[:i], err
		}
		conns[i] = nc
	}
	return conns, nil
}

// ---- write: CPU per write(2) ----

func writeFloor(c config, rate int, raw bool) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	p, err := startPeer("-role", "sink", "-addr", ln.Addr().String(), "-conns", strconv.Itoa(c.conns))
	if err != nil {
		return err
	}
	defer p.stop()
	conns, err := acceptN(ln, c.conns)
	defer func() {
		for _, nc := range conns {
			_ = nc.Close()
		}
	}()
	if err != nil {
		return err
	}
	write := func(i int, b []byte) error { _, err := conns[i].Write(b); return err }
	if raw {
		rcs := make([]syscall.RawConn, len(conns))
		for i, nc := range conns {
			if rcs[i], err = nc.SyscallConn(); err != nil {
				return err
			}
		}
		var buf []byte // the callback is made once: no allocation per write
		var werr error
		fn := func(fd uintptr) bool {
			_, werr = syscall.Write(int(fd), buf)
			return werr != syscall.EAGAIN
		}
		write = func(i int, b []byte) error {
			buf, werr = b, nil
			if err := rcs[i].Write(fn); err != nil {
				return err
			}
			return werr
		}
	}
	frame := bytes.Repeat([]byte{'x'}, c.size)
	frame[0], frame[1] = 0x81, byte(c.size-2) // a text frame, as a server sends it
	var n uint64
	var s0 snapshot
	start := time.Now()
	warm, end := start.Add(c.warmup), start.Add(c.warmup+c.duration)
	measuring := false
	sent := 0 // paced: writes done
	for i := 0; ; {
		now := time.Now()
		if !measuring && now.After(warm) {
			measuring, n = true, 0
			if s0, err = take(p); err != nil {
				return err
			}
		}
		if now.After(end) {
			break
		}
		batch := 1000
		if rate > 0 {
			time.Sleep(time.Millisecond)
			batch = int(time.Since(start).Seconds()*float64(rate)) - sent
		}
		for range batch {
			if err := write(i, frame); err != nil {
				return err
			}
			i = (i + 1) % len(conns)
		}
		sent += batch
		n += uint64(batch)
	}
	s1, err := take(p)
	if err != nil {
		return err
	}
	w := s0.to(s1)
	how := "net.Conn.Write"
	if raw {
		how = "raw write(2) on the fd"
	}
	pace := "unpaced"
	if rate > 0 {
		pace = fmt.Sprintf("paced at %d/s", rate)
	}
	per := func(d time.Duration) float64 { return us(d) / float64(n) }
	fmt.Printf("| CPU per %d-byte write, round-robin over %d conns, %s, %s | **%.2f µs** (writer user+sys, %.2f cores; %.0f writes/s; readers %.2f µs/write; softirq %.2f µs/write; %s) |\n",
		c.size, c.conns, how, pace, per(w.self), w.cores(w.self), float64(n)/w.wall.Seconds(), per(w.peer), per(w.softirq), w.note())
	return nil
}

// sink dials the connections and discards what arrives.
func sink(c config) error {
	conns, err := dialN(c.addr, c.conns)
	if err != nil {
		return err
	}
	for _, nc := range conns {
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := nc.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	servePeer()
	return nil
}

// ---- paced and inflight: latency ----

type pending struct{ ts int64 }

// samples are the latencies of messages sent in the window [from, to),
// one set per goroutine.
type samples struct {
	from, to int64
	lats     []int64
}

func (s *samples) record(ts, lat int64) {
	if ts >= s.from && ts < s.to {
		s.lats = append(s.lats, lat)
	}
}

func latencyFloor(c config, mode, topo string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	args := []string{"-role", topo, "-addr", ln.Addr().String()}
	var cln net.Listener
	if topo == "relay" {
		if cln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		defer cln.Close()
		args = append(args, "-addr2", cln.Addr().String(), "-conns", strconv.Itoa(c.conns))
	}
	p, err := startPeer(args...)
	if err != nil {
		return err
	}
	defer p.stop()
	backends, err := acceptN(ln, 1)
	if err != nil {
		return err
	}
	be := backends[0]
	defer be.Close()

	var mu sync.Mutex
	var lats []int64
	var received atomic.Uint64
	start := time.Now()
	from, to := start.Add(c.warmup).UnixNano(), start.Add(c.warmup+c.duration).UnixNano()
	merge := func(s *samples) {
		mu.Lock()
		lats = append(lats, s.lats...)
		mu.Unlock()
	}
	var clients []*net.TCPConn
	var readers sync.WaitGroup
	if topo == "relay" {
		if clients, err = acceptN(cln, c.conns); err != nil {
			return err
		}
		for _, nc := range clients {
			readers.Go(func() {
				s := &samples{from: from, to: to}
				readRelayed(nc, s, &received)
				merge(s)
			})
		}
	}
	inflight := c.inflight
	if mode == "paced" {
		inflight = 1 << 20
	}
	fifo := make(chan pending, inflight)
	var acked atomic.Uint64
	ackDone := make(chan error, 1)
	go func() {
		s := &samples{from: from, to: to}
		err := readAcks(be, fifo, topo, s, &acked)
		merge(s)
		ackDone <- err
	}()

	stop := make(chan struct{})
	var s0, s1 snapshot
	var n0, n1 uint64
	var werr error
	go func() {
		defer close(stop)
		time.Sleep(time.Until(start.Add(c.warmup)))
		n0 = acked.Load()
		if s0, werr = take(p); werr != nil {
			return
		}
		time.Sleep(time.Until(start.Add(c.warmup + c.duration)))
		n1 = acked.Load()
		s1, werr = take(p)
	}()
	var sent uint64
	if mode == "paced" {
		sent, err = writePaced(be, fifo, stop, c)
	} else {
		sent, err = writeCapped(be, fifo, stop, c)
	}
	close(fifo)
	if err = errors.Join(err, werr); err != nil {
		return err
	}
	select {
	case err := <-ackDone:
		if err != nil {
			return err
		}
	case <-time.After(10 * time.Second):
		return errors.New("acks did not all arrive")
	}
	if topo == "relay" {
		deadline := time.Now().Add(10 * time.Second)
		for received.Load() < sent && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		for _, nc := range clients {
			_ = nc.Close()
		}
		readers.Wait()
	}
	slices.Sort(lats)
	q := func(f float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[int(f*float64(len(lats)-1))]) / 1e3
	}
	w := s0.to(s1)
	rate := float64(n1-n0) / w.wall.Seconds()
	what := map[string]string{
		"paced":    fmt.Sprintf("paced %d msgs/s (%d every %s)", c.rate, int(float64(c.rate)*c.tick.Seconds()), c.tick),
		"inflight": fmt.Sprintf("%d in flight", c.inflight),
	}[mode]
	where := "direct, 1 conn A→B"
	extra := ""
	if topo == "relay" {
		where = fmt.Sprintf("relay A→B→A, %d client conns", c.conns)
		extra = fmt.Sprintf("; relay CPU %.2f µs/msg, sender+clients %.2f µs/msg, softirq %.2f µs/msg; sent %d received %d",
			us(w.peer)/float64(n1-n0), us(w.self)/float64(n1-n0), us(w.softirq)/float64(n1-n0), sent, received.Load())
	}
	extra += "; " + w.note()
	fmt.Printf("| one-way latency, %s, %s: p50 / p99 / p99.9 | **%.0f / %.0f / %.0f µs** (max %.0f µs; %.0f msgs/s%s) |\n",
		what, where, q(0.5), q(0.99), q(0.999), q(1), rate, extra)
	return nil
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// appendMsg appends "idx seq ts\n".
func appendMsg(dst []byte, idx int, seq uint64, ts int64) []byte {
	dst = strconv.AppendInt(dst, int64(idx), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '\n')
}

func writePaced(nc net.Conn, fifo chan<- pending, stop <-chan struct{}, c config) (uint64, error) {
	t := time.NewTicker(c.tick)
	defer t.Stop()
	start := time.Now()
	var sent uint64
	var buf []byte
	for {
		select {
		case <-t.C:
		case <-stop:
			return sent, nil
		}
		due := uint64(time.Since(start).Seconds()*float64(c.rate)) - sent
		buf = buf[:0]
		for range due {
			ts := time.Now().UnixNano()
			fifo <- pending{ts}
			sent++
			buf = appendMsg(buf, int(sent%uint64(c.conns)), sent, ts)
		}
		if _, err := nc.Write(buf); err != nil {
			return sent, err
		}
	}
}

func writeCapped(nc net.Conn, fifo chan<- pending, stop <-chan struct{}, c config) (uint64, error) {
	bw := bufio.NewWriterSize(nc, 64<<10)
	var sent uint64
	var line []byte
	for {
		select {
		case <-stop:
			return sent, bw.Flush()
		default:
		}
		p := pending{time.Now().UnixNano()}
		select {
		case fifo <- p:
		default:
			if err := bw.Flush(); err != nil {
				return sent, err
			}
			select {
			case fifo <- p:
			case <-stop:
				return sent, nil
			}
			p.ts = time.Now().UnixNano()
		}
		sent++
		line = appendMsg(line[:0], int(sent%uint64(c.conns)), sent, p.ts)
		if _, err := bw.Write(line); err != nil {
			return sent, err
		}
	}
}

// readAcks takes one ack line per message; in the direct topology the ack
// is the one-way latency B measured.
func readAcks(nc net.Conn, fifo <-chan pending, topo string, s *samples, acked *atomic.Uint64) error {
	br := bufio.NewReaderSize(nc, 64<<10)
	for p := range fifo {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("acks: %w", err)
		}
		if topo == "direct" {
			lat, err := strconv.ParseInt(string(line[:len(line)-1]), 10, 64)
			if err != nil {
				return fmt.Errorf("ack %q: %w", line, err)
			}
			s.record(p.ts, lat)
		}
		acked.Add(1)
	}
	return nil
}

// readRelayed is a client of the relay: it records send→receive of each
// line.
func readRelayed(nc net.Conn, s *samples, received *atomic.Uint64) {
	br := bufio.NewReaderSize(nc, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		sp := bytes.LastIndexByte(line, ' ')
		if sp < 0 {
			return
		}
		ts, _ := strconv.ParseInt(string(line[sp+1:len(line)-1]), 10, 64)
		s.record(ts, now-ts)
		received.Add(1)
	}
}

// lines calls fn for every complete line read from nc, then flush once per
// read: acks go out batched, as the text port batches its answers.
func lines(nc net.Conn, fn func(line []byte), flush func() error) error {
	buf := make([]byte, 64<<10)
	start, end := 0, 0
	for {
		n, err := nc.Read(buf[end:])
		if err != nil {
			return err
		}
		end += n
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			fn(buf[start : start+i+1])
			start += i + 1
		}
		if err := flush(); err != nil {
			return err
		}
		end = copy(buf, buf[start:end])
		start = 0
	}
}

// directPeer receives lines, timestamps each and acks it with the one-way
// latency.
func directPeer(c config) error {
	conns, err := dialN(c.addr, 1)
	if err != nil {
		return err
	}
	nc := conns[0]
	var out []byte
	go func() {
		_ = lines(nc, func(line []byte) {
			now := time.Now().UnixNano()
			sp := bytes.LastIndexByte(line, ' ')
			ts, _ := strconv.ParseInt(string(line[sp+1:len(line)-1]), 10, 64)
			out = strconv.AppendInt(out, now-ts, 10)
			out = append(out, '\n')
		}, func() error {
			_, err := nc.Write(out)
			out = out[:0]
			return err
		})
	}()
	servePeer()
	return nil
}

// relayPeer forwards each line to the client connection it names, with one
// write per line from the reading goroutine, and acks it.
func relayPeer(c config) error {
	backends, err := dialN(c.addr, 1)
	if err != nil {
		return err
	}
	clients, err := dialN(c.addr2, c.conns)
	if err != nil {
		return err
	}
	be := backends[0]
	var acks []byte
	go func() {
		_ = lines(be, func(line []byte) {
			sp := bytes.IndexByte(line, ' ')
			idx, _ := strconv.Atoi(string(line[:sp]))
			if _, err := clients[idx].Write(line); err != nil {
				acks = append(acks, "fail\n"...)
				return
			}
			acks = append(acks, "ok\n"...)
		}, func() error {
			_, err := be.Write(acks)
			acks = acks[:0]
			return err
		})
	}()
	servePeer()
	return nil
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return fmt.Sprintf("%s, %d CPUs", strings.TrimSpace(v), strings.Count(string(data), "processor\t:"))
		}
	}
	return "unknown CPU"
}
