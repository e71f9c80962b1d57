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
//	paced   50 messages/s for -cluster-paced; push → client latency of
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
		delivered atomic.Int64
		latMu     sync.Mutex
		lats      []time.Duration
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
		var lines []string
		for _, id := range ids {
			lines = append(lines, fmt.Sprintf(`{"cmd":"joinGroup","client_id":%q,"group":"bench"}`, id))
		}
		if err := pipeline(a.text, lines); err != nil {
			res.err = fmt.Errorf("join members on node %d: %w", i, err)
			return res
		}
	}
	base := time.Now()
	for _, ws := range clients {
		go func() {
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				delivered.Add(1)
				if pacedOn.Load() {
					if ns, err := strconv.ParseInt(string(data), 10, 64); err == nil {
						d := time.Since(base) - time.Duration(ns)
						latMu.Lock()
						lats = append(lats, d)
						latMu.Unlock()
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

	// Paced: 50 messages/s, each carrying its send time.
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
	tick := time.NewTicker(20 * time.Millisecond)
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
	for {
		latMu.Lock()
		n := len(lats)
		latMu.Unlock()
		if n >= wantLat || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.pacedCPU = meter.end()
	latMu.Lock()
	defer latMu.Unlock()
	if len(lats) < wantLat {
		res.err = fmt.Errorf("paced: %d of %d deliveries arrived", len(lats), wantLat)
		return res
	}
	slices.Sort(lats)
	res.p50, res.p99 = lats[len(lats)/2], lats[len(lats)*99/100]
	return res
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
	fmt.Printf("\n## Cluster: sendToGroup to one group of %d members (burst of %d, paced at 50/s for %s)\n\n", f.clusterMembers, f.clusterBurst, f.clusterPaced)
	fmt.Println("| setting | deliveries/s (burst) | push→client p50 | p99 (paced, 50 msg/s) | Redis commands per message | Redis µs per PUBLISH |")
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
