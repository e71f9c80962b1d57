package server_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// promSample is one sample line of a scrape.
type promSample struct {
	name   string
	labels string // as written, without braces
	value  float64
}

var promLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)

// parseProm parses the text exposition format strictly enough to catch a
// malformed line: every line is a comment or name{labels} value.
func parseProm(t *testing.T, text string) []promSample {
	t.Helper()
	var out []promSample
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		m := promLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("metrics line %d is malformed: %q", i+1, line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %d: value %q: %v", i+1, m[3], err)
		}
		out = append(out, promSample{m[1], m[2], v})
	}
	return out
}

func sampleOf(s []promSample, name, labels string) (float64, bool) {
	for _, x := range s {
		if x.name == name && x.labels == labels {
			return x.value, true
		}
	}
	return 0, false
}

// histogramProblems checks every series of a histogram: buckets
// cumulative, +Inf equal to _count. It returns the _count per series
// (labels without le).
func histogramProblems(s []promSample, name string) (map[string]float64, []string) {
	counts := map[string]float64{}
	last := map[string]float64{}
	var problems []string
	for _, x := range s {
		switch x.name {
		case name + "_bucket":
			i := strings.LastIndex(x.labels, `le="`)
			series := strings.TrimSuffix(x.labels[:i], ",")
			if x.value < last[series] {
				problems = append(problems, "bucket not cumulative: "+x.labels)
			}
			last[series] = x.value
			if strings.HasSuffix(x.labels, `le="+Inf"`) {
				counts[series+"|inf"] = x.value
			}
		case name + "_count":
			counts[x.labels] = x.value
		}
	}
	for k, v := range counts {
		if series, ok := strings.CutSuffix(k, "|inf"); ok {
			if counts[series] != v {
				problems = append(problems, "+Inf bucket != _count for "+series)
			}
			delete(counts, k)
		}
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

	var s []promSample
	var problems []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The reply reaches the client from inside the guest call, before
		// the call is timed: wait for the last observations.
		_, text := httpGet(t, "http://"+srv.AdminAddr().String()+"/metrics", "")
		s = parseProm(t, text)
		var counts map[string]float64
		counts, problems = histogramProblems(s, "wasmgate_event_duration_seconds")
		for _, module := range []string{"echo", "echoA"} {
			events, _ := sampleOf(s, "wasmgate_events_total", `module="`+module+`"`)
			sum := 0.0
			for series, n := range counts {
				if strings.HasPrefix(series, `module="`+module+`",`) {
					sum += n
				}
			}
			if sum != events {
				problems = append(problems, module+": histogram counts "+strconv.FormatFloat(sum, 'g', -1, 64)+" != events_total "+strconv.FormatFloat(events, 'g', -1, 64))
			}
		}
		if n := counts[`module="echo",event="on_message"`]; n != 15 {
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

	cmdCounts, cmdProblems := histogramProblems(s, "wasmgate_push_command_duration_seconds")
	if len(cmdProblems) > 0 {
		t.Errorf("command histograms: %v", cmdProblems)
	}
	for cmd, want := range map[string]float64{"ping": 2, "sendToAll": 1, "bindUid": 1} {
		if got := cmdCounts[`cmd="`+cmd+`"`]; got != want {
			t.Errorf("push command %s: count %g, want %g", cmd, got, want)
		}
	}
	if v, ok := sampleOf(s, "wasmgate_push_commands_failed_total", `cmd="bindUid"`); !ok || v != 1 {
		t.Errorf("bindUid failures: %g %v, want 1", v, ok)
	}
	if v, _ := sampleOf(s, "wasmgate_push_commands_failed_total", `cmd="ping"`); v != 0 {
		t.Errorf("ping failures: %g", v)
	}
	for _, name := range []string{"process_resident_memory_bytes", "process_open_fds", "process_max_fds", "go_goroutines",
		"process_cpu_seconds_total", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "process_start_time_seconds"} {
		if v, ok := sampleOf(s, name, ""); !ok || v <= 0 {
			t.Errorf("%s: %g %v, want a positive value", name, v, ok)
		}
	}
	if v, ok := sampleOf(s, "wasmgate_clients", ""); !ok || v != 4 {
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
