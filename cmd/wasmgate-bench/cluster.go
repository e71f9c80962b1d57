package main

import (
	"bufio"
	"context"
	"errors"
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

	"github.com/fasthttp/websocket"
)

// The cluster phase (issue 10): one group of -cluster-members members
// spread over 1 or 3 nodes that share one redis-server, and a backend on
// the first node sending sendToGroup to it:
//
//	burst   -cluster-burst messages pipelined on one text-port connection;
//	        deliveries/s = messages × members / (first write → last delivery)
//	paced   -cluster-rate (50) messages/s for -cluster-paced; push → client latency of
//	        every delivery (p50, p99)
//	redis   Redis commands per group message during the burst, from INFO
//	        commandstats (every command Redis ran, heartbeats included)
//
// Beside them, the same group on one node without [cluster] (the
// single-node figure of the same run). The clients run in this process.

// clusterResult is one row of the cluster table.
type clusterResult struct {
	label       string
	nodes       int
	members     int
	deliveriesS float64
	p50, p99    time.Duration
	cmdsPerMsg  float64
	publishUs   float64 // Redis's own time per PUBLISH (usec_per_call)
	cmdBreakout string
	// cpu is what each process used during the burst and the paced
	// windows.
	burstCPU, pacedCPU cpuWindow
	paced              pacedResult
	burstSends         int
	burstAcked         time.Duration // the burst's last answer from the text port, after its first write
	err                error
}

// clusterSettings are the rows of the cluster phase, by -cluster-settings
// key.
var clusterSettings = []struct {
	key, label string
	nodes      int
	redis      bool
}{
	{"single", "1 node, no cluster", 1, false},
	{"cluster1", "1 node, cluster mode", 1, true},
	{"cluster3", "3 nodes, cluster mode", 3, true},
}

// clusterPhase runs the settings and returns their rows.
func clusterPhase(ctx context.Context, f benchFlags) []clusterResult {
	rs, err := startRedis(ctx)
	if err != nil {
		return []clusterResult{{label: "cluster", err: err}}
	}
	defer rs.stop()
	var out []clusterResult
	for _, s := range clusterSettings {
		if !slices.Contains(f.clusterSettings, s.key) {
			continue
		}
		r := clusterRun(ctx, f, rs, s.key, s.label, s.nodes, s.redis)
		out = append(out, r)
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "cluster %s: %v\n", s.label, r.err)
		}
	}
	return out
}

func clusterRun(ctx context.Context, f benchFlags, rs *redisProc, key, label string, nodes int, withRedis bool) (res clusterResult) {
	res = clusterResult{label: label, nodes: nodes, members: f.clusterMembers}
	var servers []*child
	var addrs []serveAddrs
	defer func() {
		for _, s := range servers {
			_ = s.stop(15 * time.Second)
		}
	}()
	prefix := fmt.Sprintf("bench%d-%s:", os.Getpid(), strings.ReplaceAll(label, " ", ""))
	for range nodes {
		var extra []string
		if withRedis {
			extra = []string{"-redis", rs.url(), "-redis-prefix", prefix}
		}
		if f.clusterProcs > 0 {
			extra = append(extra, "-gomaxprocs", strconv.Itoa(f.clusterProcs))
		}
		srv, a, err := startServe(ctx, f, "notify", extra...)
		if err != nil {
			res.err = err
			return res
		}
		servers, addrs = append(servers, srv), append(addrs, a)
	}
	// Members, spread evenly, each joined through its own node.
	var (
		clients   []*websocket.Conn
		nodeOf    []int // clients[i]'s node
		delivered atomic.Int64
		latN      atomic.Int64 // paced deliveries recorded
		pacedOn   atomic.Bool
	)
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for i, a := range addrs {
		k := f.clusterMembers / nodes
		if i == 0 {
			k += f.clusterMembers % nodes
		}
		conns := make([]*websocket.Conn, k)
		ids := make([]string, k)
		errs := dialEach(k, 32, func(j int) error {
			d := sourceDialer(net.IPv4(127, 0, byte(1+i), byte(2+j/perSourceIP)), 4096)
			ws, _, err := d.DialContext(ctx, "ws://"+a.ws+"/notify", nil)
			if err != nil {
				return err
			}
			conns[j] = ws
			ids[j], err = readInit(ws)
			return err
		})
		if err := errors.Join(errs...); err != nil {
			res.err = fmt.Errorf("connect members to node %d: %w", i, firstErr(errs))
			return res
		}
		clients = append(clients, conns...)
		for range conns {
			nodeOf = append(nodeOf, i)
		}
		var lines []string
		for _, id := range ids {
			lines = append(lines, fmt.Sprintf(`{"cmd":"joinGroup","client_id":%q,"group":"bench"}`, id))
		}
		if err := pipeline(a.text, lines); err != nil {
			res.err = fmt.Errorf("join members on node %d: %w", i, err)
			return res
		}
	}
	// Each member's reader keeps its own samples (no lock shared by the
	// 3,000 readers) and reads into its own buffer (no allocation per
	// message): the clients share the machine with the nodes, so what they
	// cost is taken from the server. The epoll reader (the default on
	// Linux) reads them all from -cluster-pollers goroutines; the
	// goroutine reader gives each its websocket.Conn and goroutine.
	base := time.Now()
	logs := make([]memberLog, len(clients))
	if f.clusterReader == "epoll" {
		cnt := &memberCounters{base: base, delivered: &delivered, latN: &latN, pacedOn: &pacedOn}
		rd, err := startEpollReaders(clients, logs, cnt, f.clusterPollers)
		clients = nil // closed by startEpollReaders, their sockets now rd's
		if err != nil {
			res.err = fmt.Errorf("epoll reader: %w", err)
			return res
		}
		defer rd.close()
	}
	for i, ws := range clients {
		lg := &logs[i]
		go func() {
			var buf []byte
			for {
				_, r, err := ws.NextReader()
				if err != nil {
					return
				}
				if buf, err = readInto(buf[:0], r); err != nil {
					return
				}
				at := time.Since(base)
				delivered.Add(1)
				if pacedOn.Load() {
					if ns, err := strconv.ParseInt(string(buf), 10, 64); err == nil {
						lg.add(ns, int64(at))
						latN.Add(1)
					}
				}
			}
		}()
	}

	// Burst.
	var before map[string]int64
	if withRedis {
		before, _ = rs.commandStats()
	}
	burst := make([]string, f.clusterBurst)
	for i := range burst {
		burst[i] = `{"cmd":"sendToGroup","group":"bench","data":"burst"}`
	}
	want := int64(f.clusterBurst * f.clusterMembers)
	meter := cpuMeter{f: f, servers: servers, redis: rs, name: key}
	meter.begin("burst")
	start := time.Now()
	if err := pipeline(addrs[0].text, burst); err != nil {
		res.err = fmt.Errorf("burst: %w", err)
		return res
	}
	res.burstAcked, res.burstSends = time.Since(start), len(burst)
	deadline := time.Now().Add(2 * time.Minute)
	for delivered.Load() < want {
		if time.Now().After(deadline) {
			res.err = fmt.Errorf("burst: %d of %d deliveries after 2 minutes", delivered.Load(), want)
			return res
		}
		time.Sleep(time.Millisecond)
	}
	res.deliveriesS = float64(want) / time.Since(start).Seconds()
	res.burstCPU = meter.end()
	res.burstCPU.deliveries = want
	if withRedis {
		after, err := rs.commandStats()
		if err != nil {
			res.err = err
			return res
		}
		total, parts := int64(0), []string{}
		for cmd, n := range after {
			if strings.HasSuffix(cmd, "_usec") {
				continue
			}
			if d := n - before[cmd]; d > 0 {
				total += d
				parts = append(parts, fmt.Sprintf("%s %.2f", cmd, float64(d)/float64(f.clusterBurst)))
			}
		}
		slices.Sort(parts)
		res.cmdsPerMsg = float64(total) / float64(f.clusterBurst)
		if calls := after["publish"] - before["publish"]; calls > 0 {
			res.publishUs = float64(after["publish_usec"]-before["publish_usec"]) / float64(calls)
		}
		res.cmdBreakout = strings.Join(parts, ", ")
	}

	// Paced: -cluster-rate messages/s, each carrying its send time.
	nc, err := net.DialTimeout("tcp", addrs[0].text, 5*time.Second)
	if err != nil {
		res.err = err
		return res
	}
	defer nc.Close()
	go func() { // acks are read and dropped
		r := bufio.NewReader(nc)
		for {
			if _, err := r.ReadBytes('\n'); err != nil {
				return
			}
		}
	}()
	pacedOn.Store(true)
	meter.begin("paced")
	tick := time.NewTicker(time.Second / time.Duration(max(f.clusterRate, 1)))
	defer tick.Stop()
	end := time.Now().Add(f.clusterPaced)
	sent := 0
	for time.Now().Before(end) {
		<-tick.C
		line := fmt.Sprintf(`{"cmd":"sendToGroup","group":"bench","data":"%d"}`+"\n", time.Since(base).Nanoseconds())
		if _, err := nc.Write([]byte(line)); err != nil {
			res.err = err
			return res
		}
		sent++
	}
	wantLat := sent * f.clusterMembers
	deadline = time.Now().Add(30 * time.Second)
	for latN.Load() < int64(wantLat) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	res.pacedCPU = meter.end()
	res.pacedCPU.deliveries = int64(wantLat)
	if n := latN.Load(); n < int64(wantLat) {
		res.err = fmt.Errorf("paced: %d of %d deliveries arrived", n, wantLat)
		return res
	}
	res.paced = pacedStats(logs, nodeOf, nodes)
	res.p50, res.p99 = res.paced.p50, res.paced.p99
	return res
}

// memberCounters are what the epoll reader's members share in a cluster
// run: the time base of the logs, and the counters the run waits on.
type memberCounters struct {
	base            time.Time
	delivered, latN *atomic.Int64
	pacedOn         *atomic.Bool
}

// memberLog is one member's paced deliveries: each message's send time
// and arrival time (nanoseconds since the run's base).
type memberLog struct {
	mu         sync.Mutex // the reader appends, the end of the run reads
	sent, came []int64
}

func (l *memberLog) add(sent, came int64) {
	l.mu.Lock()
	l.sent, l.came = append(l.sent, sent), append(l.came, came)
	l.mu.Unlock()
}

// readInto appends what r holds to buf.
func readInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// pacedResult is the paced window's latencies: over every delivery, per
// node of the receiving member, and per message (its first and last
// member: the fan-out's spread).
type pacedResult struct {
	p50, p99          time.Duration
	nodeP50, nodeP99  []time.Duration
	firstP50, lastP50 time.Duration // medians over messages
	lastP99           time.Duration
	earlyP99, lateP99 time.Duration // p99 of the first and last quarter of the messages: a backlog grows
}

func pacedStats(logs []memberLog, nodeOf []int, nodes int) pacedResult {
	var all []time.Duration
	byNode := make([][]time.Duration, nodes)
	first, last := map[int64]int64{}, map[int64]int64{}
	for i := range logs {
		l := &logs[i]
		l.mu.Lock()
		for k, s := range l.sent {
			d := time.Duration(l.came[k] - s)
			all = append(all, d)
			byNode[nodeOf[i]] = append(byNode[nodeOf[i]], d)
			if f, ok := first[s]; !ok || l.came[k] < f {
				first[s] = l.came[k]
			}
			if la, ok := last[s]; !ok || l.came[k] > la {
				last[s] = l.came[k]
			}
		}
		l.mu.Unlock()
	}
	var r pacedResult
	r.p50, r.p99 = quantile(all, 0.5), quantile(all, 0.99)
	for _, b := range byNode {
		r.nodeP50, r.nodeP99 = append(r.nodeP50, quantile(b, 0.5)), append(r.nodeP99, quantile(b, 0.99))
	}
	var sends []int64
	for s := range first {
		sends = append(sends, s)
	}
	slices.Sort(sends)
	var fs, ls, early, late []time.Duration
	for i, s := range sends {
		fs, ls = append(fs, time.Duration(first[s]-s)), append(ls, time.Duration(last[s]-s))
		if i < len(sends)/4 {
			early = append(early, time.Duration(last[s]-s))
		}
		if i >= len(sends)*3/4 {
			late = append(late, time.Duration(last[s]-s))
		}
	}
	r.firstP50, r.lastP50, r.lastP99 = quantile(fs, 0.5), quantile(ls, 0.5), quantile(ls, 0.99)
	r.earlyP99, r.lateP99 = quantile(early, 0.99), quantile(late, 0.99)
	return r
}

// quantile sorts ds and returns its q quantile (0 when empty).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[int(float64(len(ds)-1)*q)]
}

// pipeline writes every line on one text-port connection and reads as
// many answers, failing on the first that is not ok.
func pipeline(addr string, lines []string) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Minute))
	errc := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(nc, 1<<16)
		for _, l := range lines {
			if _, err := w.WriteString(l + "\n"); err != nil {
				errc <- err
				return
			}
		}
		errc <- w.Flush()
	}()
	r := bufio.NewReader(nc)
	for range lines {
		ans, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.Contains(ans, `"ok":true`) {
			return fmt.Errorf("answer %s", strings.TrimSpace(ans))
		}
	}
	return <-errc
}

// redisProc is a private redis-server without persistence.
type redisProc struct {
	cmd  *exec.Cmd
	port int
	dir  string
}

func startRedis(ctx context.Context) (*redisProc, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server not found (make bench installs it): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "wasmgate-bench-redis")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &redisProc{cmd: cmd, port: port, dir: dir}
	for range 100 {
		if _, err := r.do("PING"); err == nil {
			return r, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.stop()
	return nil, errors.New("redis-server did not answer PING")
}

func (r *redisProc) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisProc) stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	os.RemoveAll(r.dir)
}

// do sends one inline command and returns the whole reply of a bulk string
// (INFO) or the status line.
func (r *redisProc) do(cmd string) (string, error) {
	nc, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), time.Second)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	br := bufio.NewReader(nc)
	head, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(head, "$") {
		return strings.TrimSpace(head), nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil {
		return "", err
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(br, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// commandStats returns calls per command from INFO commandstats, and the
// microseconds Redis spent in them as "<command>_usec".
func (r *redisProc) commandStats() (map[string]int64, error) {
	info, err := r.do("INFO commandstats")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		cmd := strings.TrimPrefix(name, "cmdstat_")
		for _, field := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(field, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				out[cmd] = n
			case "usec":
				out[cmd+"_usec"] = n
			}
		}
	}
	return out, nil
}

// printClusterRows prints the cluster table.
func printClusterRows(f benchFlags, rows []clusterResult) {
	fmt.Printf("\n## Cluster: sendToGroup to one group of %d members (burst of %d, paced at %d/s for %s)\n\n", f.clusterMembers, f.clusterBurst, f.clusterRate, f.clusterPaced)
	fmt.Printf("| setting | deliveries/s (burst) | push→client p50 | p99 (paced, %d msg/s) | Redis commands per message | Redis µs per PUBLISH |\n", f.clusterRate)
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf("| %s | error: %s | | | | |\n", r.label, mdEscape(r.err.Error()))
			continue
		}
		cmds := "—"
		if r.cmdBreakout != "" {
			cmds = fmt.Sprintf("%.2f (%s)", r.cmdsPerMsg, r.cmdBreakout)
		}
		pub := "—"
		if r.publishUs > 0 {
			pub = fmt.Sprintf("%.1f", r.publishUs)
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s | %s |\n", r.label, r.deliveriesS, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), cmds, pub)
	}
}
