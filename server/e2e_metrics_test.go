package server_test

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wasmgate/wasmgate/config"
	"github.com/wasmgate/wasmgate/server"
)

// scrape is one GET /metrics, parsed with the Prometheus text parser
// (expfmt), which fails on any malformed line.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, srv *testServer) scrape {
	t.Helper()
	code, text := httpGet(t, "http://"+srv.AdminAddr().String()+"/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// seriesKey is a series' labels as sorted k=v pairs joined by commas ("" for
// none).
func seriesKey(m *dto.Metric) string {
	var kv []string
	for _, l := range m.GetLabel() {
		kv = append(kv, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// value returns the value of name's series with exactly the labels
// (key=value pairs in label-name order, "" for none), whatever its type.
func (s scrape) value(name, labels string) (float64, bool) {
	for _, m := range s[name].GetMetric() {
		if seriesKey(m) != labels {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// histogramProblems checks every series of a histogram: buckets
// cumulative and increasing in bound, +Inf equal to the count. It returns
// the count per series (seriesKey).
func (s scrape) histogramProblems(name string) (map[string]float64, []string) {
	counts := map[string]float64{}
	var problems []string
	fam := s[name]
	if fam != nil && fam.GetType() != dto.MetricType_HISTOGRAM {
		problems = append(problems, name+" is a "+fam.GetType().String())
	}
	for _, m := range fam.GetMetric() {
		key, h := seriesKey(m), m.GetHistogram()
		last, lastBound := uint64(0), math.Inf(-1)
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() < last || b.GetUpperBound() <= lastBound {
				problems = append(problems, "bucket not cumulative: "+key)
			}
			last, lastBound = b.GetCumulativeCount(), b.GetUpperBound()
		}
		if last != h.GetSampleCount() {
			problems = append(problems, "+Inf bucket != _count for "+key)
		}
		counts[key] = float64(h.GetSampleCount())
	}
	return counts, problems
}

// TestMetrics_HistogramsAndProcess: /metrics has an event-duration
// histogram per module and event whose counts add up to the module's
// events_total, a push-command histogram whose counts are the commands
// run, failures by command, and the process metrics; every line parses.
func TestMetrics_HistogramsAndProcess(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo", "echoA"), nil)
	for range 3 {
		c := srv.dial(t, "/echo")
		for range 5 {
			c.sendText("hi")
			c.read()
		}
	}
	a := srv.dial(t, "/echoA")
	a.sendText("x")
	a.read()
	api := "http://" + srv.AdminAddr().String() + "/api/"
	for _, call := range []struct{ cmd, body string }{
		{"ping", "{}"}, {"ping", "{}"}, {"sendToAll", `{"data":"all"}`}, {"bindUid", `{"client_id":"nobody","uid":"u"}`},
	} {
		httpPost(t, api+call.cmd, "", call.body)
	}

	var s scrape
	var problems []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The reply reaches the client from inside the guest call, before
		// the call is timed: wait for the last observations.
		s = scrapeMetrics(t, srv)
		var counts map[string]float64
		counts, problems = s.histogramProblems("wasmgate_event_duration_seconds")
		for _, module := range []string{"echo", "echoA"} {
			events, _ := s.value("wasmgate_events_total", "module="+module)
			sum := 0.0
			for series, n := range counts {
				if strings.HasSuffix(series, ",module="+module) {
					sum += n
				}
			}
			if sum != events {
				problems = append(problems, module+": histogram counts "+strconv.FormatFloat(sum, 'g', -1, 64)+" != events_total "+strconv.FormatFloat(events, 'g', -1, 64))
			}
		}
		if n := counts["event=on_message,module=echo"]; n != 15 {
			problems = append(problems, "echo on_message count "+strconv.FormatFloat(n, 'g', -1, 64)+", want 15")
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(problems) > 0 {
		t.Fatalf("event histograms: %v", problems)
	}

	cmdCounts, cmdProblems := s.histogramProblems("wasmgate_push_command_duration_seconds")
	if len(cmdProblems) > 0 {
		t.Errorf("command histograms: %v", cmdProblems)
	}
	for cmd, want := range map[string]float64{"ping": 2, "sendToAll": 1, "bindUid": 1} {
		if got := cmdCounts["cmd="+cmd]; got != want {
			t.Errorf("push command %s: count %g, want %g", cmd, got, want)
		}
	}
	if v, ok := s.value("wasmgate_push_commands_failed_total", "cmd=bindUid"); !ok || v != 1 {
		t.Errorf("bindUid failures: %g %v, want 1", v, ok)
	}
	if v, _ := s.value("wasmgate_push_commands_failed_total", "cmd=ping"); v != 0 {
		t.Errorf("ping failures: %g", v)
	}
	for _, name := range []string{"process_resident_memory_bytes", "process_open_fds", "process_max_fds", "go_goroutines",
		"process_cpu_seconds_total", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "process_start_time_seconds"} {
		if v, ok := s.value(name, ""); !ok || v <= 0 {
			t.Errorf("%s: %g %v, want a positive value", name, v, ok)
		}
	}
	if v, ok := s.value("wasmgate_clients", ""); !ok || v != 4 {
		t.Errorf("wasmgate_clients %g", v)
	}

	// GET /status carries the same histograms, and p99 comes from them.
	st := srv.Status()
	for _, m := range st.Modules {
		total := uint64(0)
		for _, h := range m.Latency {
			total += h.Count()
		}
		if int64(total) != m.Events {
			t.Errorf("%s: status latency counts %d, events %d", m.Module, total, m.Events)
		}
		if h, ok := m.Latency["on_message"]; !ok {
			t.Errorf("%s: no on_message latency", m.Module)
		} else if p99, ok := h.Quantile(0.99); !ok || p99 <= 0 || p99 > 5 {
			t.Errorf("%s: p99 %g %v", m.Module, p99, ok)
		}
	}
}

// TestConnections_CountsTraffic: the per-connection counters see every
// message each way, including a fan-out's, and the filters select.
func TestConnections_CountsTraffic(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), nil)
	c := srv.dial(t, "/echo")
	for _, m := range []string{"a", "bb", "ccc"} {
		c.sendText(m)
		c.read()
	}
	httpPost(t, "http://"+srv.AdminAddr().String()+"/api/sendToAll", "", `{"data":"four"}`)
	c.read()
	var info server.ConnInfo
	eventually(t, "the counters", func() bool {
		list, err := srv.Connections(t.Context(), server.ConnFilter{})
		if err != nil || len(list) != 1 {
			return false
		}
		info = list[0]
		return info.MsgsOut == 4
	})
	if info.MsgsIn != 3 || info.BytesIn != 6 || info.MsgsOut != 4 || info.BytesOut != 10 || info.Module != "echo" {
		t.Errorf("connection: %+v", info)
	}
	if list, _ := srv.Connections(t.Context(), server.ConnFilter{Module: "other"}); len(list) != 0 {
		t.Errorf("module filter: %+v", list)
	}
}

// TestMetrics_CountersMove drives every kind of traffic through a real
// server and checks, on two parsed scrapes, that each counter moved by
// exactly what was done: handshakes accepted and refused (origin, handler,
// invalid upgrade), messages and bytes each way by module, push commands
// by result, reloads ok and failed, and a slow consumer closed with its
// queue dropped.
func TestMetrics_CountersMove(t *testing.T) {
	dir := handlersWith(t, "echo", "notify")
	srv := startServer(t, dir, func(c *server.Config) {
		c.Server.AllowedOrigins = []string{"https://app.example.com"}
		c.Modules = map[string]config.ModuleConfig{"notify": {Config: "tok"}}
		c.Server.SendQueueSize = 4
		c.Server.SendQueueBytes = 256 << 10
		c.Server.WriteTimeout.Duration = 30 * time.Second // the slow client is closed by its queue, not a timeout
		c.Server.PingInterval.Duration = 0                // no pings: the message counts stay exact
		c.Server.WatchHandlers = false                    // the reloads are the test's POSTs only
	})
	before := scrapeMetrics(t, srv)
	admin := "http://" + srv.AdminAddr().String()

	// Handshakes: 2 accepted on /echo, 1 on /notify (the slow client
	// below), refused: 1 origin, 1 handler (no token), 1 invalid upgrade.
	echo1, echo2 := srv.dial(t, "/echo"), srv.dial(t, "/echo")
	hdr := http.Header{"Origin": {"https://evil.example"}}
	if _, resp, err := websocket.DefaultDialer.Dial(srv.url+"/echo", hdr); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v, want 403", resp, err)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(srv.url+"/notify", nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("no token: %v %v, want 403", resp, err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr().String()+"/echo", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "12") // not 13
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("invalid upgrade answered %d", resp.StatusCode)
	}

	// Messages: 3 in and 3 out per echo client, 10 payload bytes each way
	// on echo1 and 4 on echo2.
	for _, m := range []string{"a", "bbb", "cccccc"} {
		echo1.sendText(m)
		echo1.read()
	}
	for _, m := range []string{"x", "y", "zz"} {
		echo2.sendText(m)
		echo2.read()
	}

	// Push commands: 2 ping ok, 1 bindUid failed (no such client).
	httpPost(t, admin+"/api/ping", "", "{}")
	httpPost(t, admin+"/api/ping", "", "{}")
	if code, body := httpPost(t, admin+"/api/bindUid", "", `{"client_id":"nobody","uid":"u"}`); !strings.Contains(body, `"ok":false`) {
		t.Fatalf("bindUid to nobody: %d %s", code, body)
	}

	// Reloads: one ok (nothing changed), one failed (a module refused).
	if code, body := httpPost(t, admin+"/reload", "", ""); code != 200 || strings.Contains(body, "refused") {
		t.Fatalf("reload: %d %s", code, body)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.wasm"), []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := httpPost(t, admin+"/reload", "", ""); code != 200 || !strings.Contains(body, "refused") {
		t.Fatalf("reload of a broken module: %d %s", code, body)
	}

	// A slow consumer: a /notify client that never reads, pushed 64 KiB
	// messages until its queue is over send_queue_bytes.
	_, slowID := dialNotify(t, srv.url+"/notify?token=tok")
	b := srv.backend(t)
	big := strings.Repeat("x", 64<<10)
	pushed, sendOK := 0, 0
	for ; pushed < 2000; pushed++ {
		ans := b.call(fmt.Sprintf(`{"cmd":"sendToClient","client_id":%q,"data":%q}`, slowID, big))
		if ans["ok"] == true {
			sendOK++
			continue
		}
		if e, _ := ans["error"].(map[string]any); e["code"] != "queue_full" {
			t.Fatalf("push %d: %v", pushed, ans)
		}
		break
	}
	if pushed == 2000 {
		t.Fatal("the client that never reads was never closed as a slow consumer")
	}

	var after scrape
	var problems []string
	// Generous: under -race on a loaded machine the slow client's close
	// and the last writes take a while to land.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after = scrapeMetrics(t, srv)
		problems = nil
		delta := func(name, labels string, want float64) {
			b, _ := before.value(name, labels)
			a, ok := after.value(name, labels)
			if !ok || a-b != want {
				problems = append(problems, fmt.Sprintf("%s{%s}: moved by %g (present %v), want %g", name, labels, a-b, ok, want))
			}
		}
		delta("wasmgate_handshakes_total", "result=accepted", 3)
		delta("wasmgate_handshakes_total", "result=origin", 1)
		delta("wasmgate_handshakes_total", "result=handler", 1)
		delta("wasmgate_handshakes_total", "result=invalid", 1)
		delta("wasmgate_handshakes_total", "result=ip_rate", 0)
		delta("wasmgate_origins_refused_total", "", 1)
		delta("wasmgate_messages_in_total", "module=echo", 6)
		delta("wasmgate_messages_out_total", "module=echo", 6)
		delta("wasmgate_bytes_in_total", "module=echo", 14)
		delta("wasmgate_bytes_out_total", "module=echo", 14)
		delta("wasmgate_messages_in_total", "module=notify", 0)
		delta("wasmgate_connections", "module=echo", 2)
		delta("wasmgate_push_commands_total", "cmd=ping,result=ok", 2)
		delta("wasmgate_push_commands_total", "cmd=ping,result=failed", 0)
		delta("wasmgate_push_commands_total", "cmd=bindUid,result=failed", 1)
		delta("wasmgate_push_commands_total", "cmd=bindUid,result=ok", 0)
		delta("wasmgate_push_commands_total", "cmd=sendToClient,result=ok", float64(sendOK))
		delta("wasmgate_push_commands_total", "cmd=sendToClient,result=failed", 1)
		delta("wasmgate_push_commands_failed_total", "cmd=bindUid", 1)
		delta("wasmgate_reloads_total", "result=ok", 1)
		delta("wasmgate_reloads_total", "result=failed", 1)
		delta("wasmgate_slow_consumers_total", "", 1)
		if len(problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %v", problems)
		}
	}
	// The slow client's queue (at most send_queue_size) and the refused
	// send were dropped; its messages out are those its socket took.
	if d, _ := after.value("wasmgate_send_queue_dropped_total", ""); d < 1 || d > 5 {
		t.Errorf("send_queue_dropped_total %g, want 1 to 5 (the queue and the refused send)", d)
	}
	if out, _ := after.value("wasmgate_messages_out_total", "module=notify"); out < 1 || out > float64(sendOK)+1 {
		t.Errorf("notify messages out %g, want the init message and at most the %d sends accepted", out, sendOK)
	}
	// The latency of every command run, by command.
	counts, hp := after.histogramProblems("wasmgate_push_command_duration_seconds")
	if len(hp) > 0 || counts["cmd=ping"] != 2 || counts["cmd=sendToClient"] != float64(sendOK+1) {
		t.Errorf("command histograms %v %v", counts, hp)
	}

	// A client that leaves keeps its traffic in the module's counters; the
	// connections gauge drops.
	echo2.ws.Close()
	waitFor(t, 30*time.Second, "echo2 gone, its traffic kept", func() bool {
		s := scrapeMetrics(t, srv)
		conns, _ := s.value("wasmgate_connections", "module=echo")
		in, _ := s.value("wasmgate_messages_in_total", "module=echo")
		was, _ := after.value("wasmgate_messages_in_total", "module=echo")
		return conns == 1 && in == was
	})
}
