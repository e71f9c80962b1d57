package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wasmgate/wasmgate/internal/metrics"
	"github.com/wasmgate/wasmgate/server"
)

// The operations commands, GatewayWorker's `php start.php status`,
// `connections` and `stop`: they read the config (-c) for the admin
// listener's address and push.secret, and ask the running gateway through
// it (GET /status, GET /connections, POST /stop). The pid file
// (server.pid_file), when set, tells "not running" and "stale pid file"
// apart from "not answering".
//
// Exit codes follow the LSB's status convention: 0 running (or done), 1
// failed or dead with a stale pid file, 3 not running.

const (
	exitNotRunning = 3
	// stopGrace is how much longer than its --timeout `stop` waits for
	// the process to exit: the runtime's close and the readers' on_close
	// come after the timeout (server.Shutdown).
	stopGrace = 10 * time.Second
)

// runOps runs status, connections or stop.
func runOps(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("c", "config.toml", "path to the config file")
	asJSON := fs.Bool("json", false, "print JSON for scripts instead of a table")
	var interval, timeout *time.Duration
	var f server.ConnFilter
	var limit *int
	switch cmd {
	case "status":
		interval = fs.Duration("interval", time.Second, "how long to sample events/s and p99 over (0: no sampling, p99 since load)")
	case "connections":
		fs.StringVar(&f.UID, "uid", "", "only clients bound to this uid")
		fs.StringVar(&f.Group, "group", "", "only members of this group")
		fs.StringVar(&f.Module, "module", "", "only clients of this module")
		limit = fs.Int("limit", 1000, "list at most this many (oldest first)")
	case "stop":
		timeout = fs.Duration("timeout", 10*time.Second, "how long clients get to close (1001) before they are dropped")
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wasmgate %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	cfg, err := server.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "wasmgate:", err)
		return 1
	}
	a := adminOf(cfg)
	switch cmd {
	case "status":
		return statusCmd(a, cfg, *interval, *asJSON, stdout, stderr)
	case "connections":
		return connectionsCmd(a, cfg, f, *limit, *asJSON, stdout, stderr)
	default:
		return stopCmd(a, cfg, *timeout, stdout, stderr)
	}
}

// admin is the running gateway's admin listener as the CLI reaches it.
type admin struct {
	base   string // http://host:port; "" when admin.listen is off
	secret string
	local  bool // on this machine: its pid can be watched
	client *http.Client
}

func adminOf(cfg server.Config) admin {
	a := admin{secret: cfg.Push.Secret, client: &http.Client{Timeout: 30 * time.Second}}
	if cfg.Admin.Listen == "" {
		return a
	}
	host, port, _ := net.SplitHostPort(cfg.Admin.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		a.local = true
	}
	a.base = "http://" + net.JoinHostPort(host, port)
	return a
}

// errUnreachable marks an admin listener that did not answer at all.
var errUnreachable = errors.New("admin listener does not answer")

// call makes one request and decodes a 2xx JSON answer into out.
func (a admin) call(method, path string, out any) error {
	req, err := http.NewRequest(method, a.base+path, nil)
	if err != nil {
		return err
	}
	if a.secret != "" {
		req.Header.Set("Authorization", "Bearer "+a.secret)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%s): %w", errUnreachable, a.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error.Message)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// notAnswering explains, from the pid file, an admin listener that did not
// answer (err) or is not configured (err nil), and returns the exit code.
func notAnswering(a admin, cfg server.Config, err error, stderr io.Writer) int {
	pid, running, state := pidState(cfg.Server.PIDFile)
	switch {
	case a.base == "" && state == "":
		fmt.Fprintln(stderr, "wasmgate: this command needs the admin listener (admin.listen) or at least server.pid_file in the config")
		return 1
	case a.base == "" && running:
		fmt.Fprintf(stderr, "wasmgate: running as pid %d; set admin.listen for its status\n", pid)
		return 0
	case running:
		fmt.Fprintf(stderr, "wasmgate: %v\nwasmgate: but pid %d (%s) is running: is admin.listen the one it was started with?\n", err, pid, cfg.Server.PIDFile)
		return 1
	case pid != 0: // stale
		fmt.Fprintf(stderr, "wasmgate: not running: %s\n", state)
		return 1
	case state != "":
		fmt.Fprintf(stderr, "wasmgate: not running: %s\n", state)
		return exitNotRunning
	default:
		fmt.Fprintf(stderr, "wasmgate: not running? %v\n", err)
		return exitNotRunning
	}
}

// statusReport is what `wasmgate status --json` prints: the table's
// figures, computed from two samples of GET /status taken interval apart.
type statusReport struct {
	Version        string          `json:"version"`
	PID            int             `json:"pid"`
	Node           string          `json:"node"`
	StartedAt      time.Time       `json:"started_at"`
	Uptime         float64         `json:"uptime_seconds"`
	Connections    int             `json:"connections"`
	Uids           int             `json:"uids"`
	Groups         int             `json:"groups"`
	Backends       int             `json:"backends"`
	ResidentBytes  int64           `json:"resident_bytes"`
	HeapBytes      uint64          `json:"heap_alloc_bytes"`
	Goroutines     int             `json:"goroutines"`
	OpenFDs        int64           `json:"open_fds"`
	MaxFDs         int64           `json:"max_fds"`
	CPUSeconds     float64         `json:"cpu_seconds"`
	Interval       float64         `json:"interval_seconds"`
	Modules        []moduleReport  `json:"modules"`
	Cluster        *clusterSummary `json:"cluster,omitempty"`
	PIDFile        string          `json:"pid_file,omitempty"`
	PIDFileProblem string          `json:"pid_file_problem,omitempty"`
}

// moduleReport is one module's line of the status table.
type moduleReport struct {
	Module string `json:"module"`
	// EventsPerSecond is over the sampling interval; null without one.
	EventsPerSecond *float64 `json:"events_per_second"`
	// P99 is the 99th percentile of the guest call time, in seconds, over
	// the interval if it saw calls, else since the module loaded (P99Over
	// says which: "interval" or "loaded"); null before any call.
	P99         *float64 `json:"p99_seconds"`
	P99Over     string   `json:"p99_over,omitempty"`
	Events      int64    `json:"events"`
	Traps       int64    `json:"traps"`
	Timeouts    int64    `json:"timeouts"`
	PoolBusy    int      `json:"pool_busy"`
	PoolSize    int      `json:"pool_size"`
	Instances   int      `json:"instances"`
	Queued      int      `json:"queued"`
	Quarantined string   `json:"quarantined,omitempty"`
}

type clusterSummary struct {
	Healthy    bool `json:"healthy"`
	NodesAlive int  `json:"nodes_alive"`
}

func statusCmd(a admin, cfg server.Config, interval time.Duration, asJSON bool, stdout, stderr io.Writer) int {
	if a.base == "" {
		return notAnswering(a, cfg, nil, stderr)
	}
	var first, last server.Status
	if err := a.call(http.MethodGet, "/status", &first); err != nil {
		if errors.Is(err, errUnreachable) {
			return notAnswering(a, cfg, err, stderr)
		}
		fmt.Fprintln(stderr, "wasmgate:", err)
		return 1
	}
	last = first
	if interval > 0 {
		time.Sleep(interval)
		last = server.Status{} // decoding into first's copy would overwrite first's modules
		if err := a.call(http.MethodGet, "/status", &last); err != nil {
			fmt.Fprintln(stderr, "wasmgate:", err)
			return 1
		}
	}
	rep := buildReport(first, last, interval)
	if _, running, state := pidState(cfg.Server.PIDFile); state != "" {
		rep.PIDFile = cfg.Server.PIDFile
		if !running {
			rep.PIDFileProblem = state
		}
	}
	if asJSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return 0
	}
	printStatus(stdout, rep)
	return 0
}

func buildReport(first, last server.Status, interval time.Duration) statusReport {
	r := statusReport{
		Version: last.Version, PID: last.PID, Node: fmt.Sprintf("%08x", last.NodeID), StartedAt: last.StartedAt,
		Uptime: last.Uptime, Connections: last.Clients, Uids: last.Uids, Groups: last.Groups, Backends: last.Backends,
		Interval: interval.Seconds(),
	}
	if p := last.Process; p != nil {
		r.ResidentBytes, r.HeapBytes, r.Goroutines, r.OpenFDs, r.MaxFDs, r.CPUSeconds = p.ResidentBytes, p.HeapAlloc, p.Goroutines, p.OpenFDs, p.MaxFDs, p.CPUSeconds
	}
	if c := last.Cluster; c != nil {
		r.Cluster = &clusterSummary{Healthy: c.Healthy, NodesAlive: len(c.NodesAlive)}
	}
	before := map[string]server.ModuleStatus{}
	for _, m := range first.Modules {
		before[m.Module] = m
	}
	for _, m := range last.Modules {
		mr := moduleReport{
			Module: m.Module, Events: m.Events, Traps: m.Traps, Timeouts: m.Timeouts,
			PoolBusy: m.Busy, PoolSize: m.PoolSize, Instances: m.Instances, Queued: m.Queued, Quarantined: m.Quarantined,
		}
		total := mergeLatency(m)
		var window metrics.HistogramSnapshot
		if b, ok := before[m.Module]; ok && interval > 0 {
			window = total.Sub(mergeLatency(b))
			d := m.Events - b.Events
			if d < 0 { // reloaded meanwhile: its counters restarted
				d = m.Events
			}
			rate := float64(d) / interval.Seconds()
			mr.EventsPerSecond = &rate
		}
		if q, ok := window.Quantile(0.99); ok {
			mr.P99, mr.P99Over = &q, "interval"
		} else if q, ok := total.Quantile(0.99); ok {
			mr.P99, mr.P99Over = &q, "loaded"
		}
		r.Modules = append(r.Modules, mr)
	}
	return r
}

// mergeLatency adds up a module's event kinds into one histogram.
func mergeLatency(m server.ModuleStatus) metrics.HistogramSnapshot {
	var all metrics.HistogramSnapshot
	for _, h := range m.Latency {
		all.Add(h)
	}
	return all
}

func printStatus(w io.Writer, r statusReport) {
	version := r.Version
	if version == "" {
		version = "(unknown version)"
	}
	fmt.Fprintf(w, "wasmgate %s   pid %d   node %s   up %s (since %s)\n", version, r.PID, r.Node,
		fmtDuration(time.Duration(r.Uptime*float64(time.Second))), r.StartedAt.Local().Format("2006-01-02 15:04:05"))
	fmt.Fprintf(w, "connections %d   uids %d   groups %d   backends %d\n", r.Connections, r.Uids, r.Groups, r.Backends)
	fds := "?"
	if r.OpenFDs >= 0 {
		fds = fmt.Sprint(r.OpenFDs)
		if r.MaxFDs > 0 {
			fds += fmt.Sprintf("/%d", r.MaxFDs)
		}
	}
	fmt.Fprintf(w, "memory %s rss, %s heap   goroutines %d   open files %s   cpu %.1fs\n",
		fmtBytes(r.ResidentBytes), fmtBytes(int64(r.HeapBytes)), r.Goroutines, fds, r.CPUSeconds)
	if c := r.Cluster; c != nil {
		fmt.Fprintf(w, "cluster healthy=%v   nodes alive %d\n", c.Healthy, c.NodesAlive)
	}
	if r.PIDFileProblem != "" {
		fmt.Fprintf(w, "warning: %s\n", r.PIDFileProblem)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tEVENTS/S\tP99\tEVENTS\tTRAPS\tTIMEOUTS\tPOOL BUSY\tQUEUED\tSTATE")
	for _, m := range r.Modules {
		rate, p99 := "-", "-"
		if m.EventsPerSecond != nil {
			rate = fmt.Sprintf("%.1f", *m.EventsPerSecond)
		}
		if m.P99 != nil {
			p99 = fmtSeconds(*m.P99)
			if m.P99Over == "loaded" {
				p99 += "*"
			}
		}
		state := "ok"
		if m.Quarantined != "" {
			state = "quarantined: " + m.Quarantined
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d/%d\t%d\t%s\n", m.Module, rate, p99, m.Events, m.Traps, m.Timeouts, m.PoolBusy, m.PoolSize, m.Queued, state)
	}
	_ = tw.Flush()
	if r.Interval > 0 {
		fmt.Fprintf(w, "\nevents/s and p99 over %s (p99*: no calls then, since the module loaded)\n", time.Duration(r.Interval*float64(time.Second)))
	}
}

func connectionsCmd(a admin, cfg server.Config, f server.ConnFilter, limit int, asJSON bool, stdout, stderr io.Writer) int {
	if a.base == "" {
		fmt.Fprintln(stderr, "wasmgate: connections needs the admin listener (admin.listen)")
		return 1
	}
	q := url.Values{}
	for k, v := range map[string]string{"uid": f.UID, "group": f.Group, "module": f.Module} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", fmt.Sprint(limit))
	var list struct {
		Total       int               `json:"total"`
		Limit       int               `json:"limit"`
		Connections []server.ConnInfo `json:"connections"`
	}
	if err := a.call(http.MethodGet, "/connections?"+q.Encode(), &list); err != nil {
		if errors.Is(err, errUnreachable) {
			return notAnswering(a, cfg, err, stderr)
		}
		fmt.Fprintln(stderr, "wasmgate:", err)
		return 1
	}
	if asJSON {
		out, _ := json.MarshalIndent(list, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tREMOTE\tMODULE\tUID\tGROUPS\tCONNECTED\tMSGS IN\tMSGS OUT\tBYTES IN\tBYTES OUT")
	now := time.Now()
	for _, c := range list.Connections {
		uid, groups := c.UID, strings.Join(c.Groups, ",")
		if uid == "" {
			uid = "-"
		}
		if groups == "" {
			groups = "-"
		}
		since := c.Since.Local().Format("2006-01-02 15:04:05") + " (" + fmtDuration(now.Sub(c.Since)) + ")"
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", c.ID, c.Remote, c.Module, uid, groups, since, c.MsgsIn, c.MsgsOut, c.BytesIn, c.BytesOut)
	}
	_ = tw.Flush()
	if list.Total > len(list.Connections) {
		fmt.Fprintf(stdout, "%d of %d connections shown (--limit %d)\n", len(list.Connections), list.Total, list.Limit)
	} else {
		fmt.Fprintf(stdout, "%d connection(s)\n", list.Total)
	}
	return 0
}

// stopCmd stops the gateway gracefully: through POST /stop when the admin
// listener is configured, else by SIGTERM to the pid file's process; then
// it waits for the process to exit when it runs on this machine.
func stopCmd(a admin, cfg server.Config, timeout time.Duration, stdout, stderr io.Writer) int {
	if timeout <= 0 {
		fmt.Fprintln(stderr, "wasmgate stop: --timeout must be positive")
		return 2
	}
	var pid int
	switch {
	case a.base != "":
		var ans struct {
			PID int `json:"pid"`
		}
		err := a.call(http.MethodPost, "/stop?timeout="+url.QueryEscape(timeout.String()), &ans)
		if errors.Is(err, errUnreachable) {
			return notAnswering(a, cfg, err, stderr)
		}
		if err != nil {
			fmt.Fprintln(stderr, "wasmgate:", err)
			return 1
		}
		pid = ans.PID
		if !a.local {
			fmt.Fprintf(stdout, "stop requested: pid %d on %s closes its clients within %s\n", pid, a.base, timeout)
			return 0
		}
	default:
		p, running, _ := pidState(cfg.Server.PIDFile)
		if !running {
			return notAnswering(a, cfg, nil, stderr)
		}
		if err := terminate(p); err != nil {
			fmt.Fprintf(stderr, "wasmgate: stop pid %d: %v\n", p, err)
			return 1
		}
		pid, timeout = p, 10*time.Second // SIGTERM: start's own shutdown timeout
	}
	fmt.Fprintf(stdout, "stopping pid %d (clients get close 1001, %s to finish)\n", pid, timeout)
	deadline := time.Now().Add(timeout + stopGrace)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "wasmgate: pid %d still runs %s after the stop request\n", pid, timeout+stopGrace)
			return 1
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "stopped\n")
	return 0
}

func fmtDuration(d time.Duration) string {
	if d < 24*time.Hour {
		return d.Round(time.Second).String()
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%s", days, (d - days*24*time.Hour).Round(time.Minute))
}

func fmtSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

func fmtBytes(n int64) string {
	if n < 0 {
		return "?"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
