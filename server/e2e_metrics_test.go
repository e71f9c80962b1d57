package server_test

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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
