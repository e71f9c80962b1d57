package push

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wasmgate/wasmgate/internal/cluster"
	"github.com/wasmgate/wasmgate/internal/metrics"
	"github.com/wasmgate/wasmgate/internal/transport"
	"github.com/wasmgate/wasmgate/runtime"
)

// fullTestStatus is a Status with something in every part /metrics reads.
func fullTestStatus(module string) Status {
	var h metrics.Histogram
	h.Observe(20 * time.Microsecond)
	h.Observe(3 * time.Second)
	lat := map[string]metrics.HistogramSnapshot{"on_message": h.Snapshot()}
	return Status{
		Clients: 3, Backends: 2, BackendsRefused: 7, Version: "v1\n\"x\"",
		Modules:    []ModuleStatus{{Stats: runtime.Stats{Module: module, Events: 5, Latency: lat}}},
		Cluster:    &cluster.Status{Healthy: true, Redis: "ok"},
		Handshakes: Handshakes{Accepted: 4},
		Traffic:    map[string]ModuleTraffic{module: {Connections: 1, Traffic: transport.Traffic{MsgsIn: 9}}},
		Commands:   []CommandStats{{Name: "ping", OK: 2, Latency: h.Snapshot()}},
	}
}

// gatherText runs the collector on st through a pedantic registry (which
// checks that every metric matches a described series) and returns the
// text exposition.
func gatherText(t *testing.T, st Status) (string, []*dto.MetricFamily) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newStatusCollector(func() Status { return st }))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String(), fams
}

// TestMetrics_EscapesLabels checks label values survive the text format
// whatever they hold: quotes, backslashes and line feeds escaped (where
// Go's %q, used before, wrote escapes Prometheus does not know), tabs,
// control bytes and UTF-8 kept, and bytes that are not UTF-8 replaced
// rather than failing the scrape.
func TestMetrics_EscapesLabels(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"a\"b\\c\nd\te\x01é", "a\"b\\c\nd\te\x01é"},
		{"bad\xffname", "bad\uFFFDname"},
	} {
		text, _ := gatherText(t, fullTestStatus(tc.name))
		// Every sample is one line: a raw newline in a label would split one.
		for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "wasmgate_") && !strings.HasPrefix(line, "go_") {
				t.Errorf("stray line %q", line)
			}
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			t.Fatalf("module %q: the exposition does not parse: %v\n%s", tc.name, err, text)
		}
		m := fams["wasmgate_events_total"].GetMetric()
		if len(m) != 1 || m[0].GetLabel()[0].GetValue() != tc.want || m[0].GetCounter().GetValue() != 5 {
			t.Errorf("module %q: events_total %v, want module=%q 5", tc.name, m, tc.want)
		}
		if v := fams["wasmgate_build_info"].GetMetric()[0].GetLabel()[0].GetValue(); v != "v1\n\"x\"" {
			t.Errorf("build_info version %q", v)
		}
		for name, want := range map[string]float64{"wasmgate_backends": 2, "wasmgate_backends_refused_total": 7, "wasmgate_clients": 3} {
			if got := fams[name].GetMetric(); len(got) != 1 || got[0].GetGauge().GetValue()+got[0].GetCounter().GetValue() != want {
				t.Errorf("%s: %v, want %g", name, got, want)
			}
		}
	}
}

// TestMetrics_EverySeriesEmitted: a Status with every part set yields
// every series of seriesTable, each with its declared type, and nothing
// else: no entry of the table is dead, and no series escapes it.
func TestMetrics_EverySeriesEmitted(t *testing.T) {
	_, fams := gatherText(t, fullTestStatus("echo"))
	got := map[string]dto.MetricType{}
	for _, f := range fams {
		got[f.GetName()] = f.GetType()
	}
	want := map[seriesKind]dto.MetricType{counter: dto.MetricType_COUNTER, gauge: dto.MetricType_GAUGE, histogram: dto.MetricType_HISTOGRAM}
	for _, d := range seriesTable() {
		typ, ok := got[d.name]
		if !ok {
			t.Errorf("%s is not emitted", d.name)
		} else if typ != want[d.kind] {
			t.Errorf("%s is a %v, declared %v", d.name, typ, d.kind)
		}
		delete(got, d.name)
	}
	for name := range got {
		t.Errorf("%s is emitted but not in seriesTable", name)
	}
	// Histogram buckets are the fixed bounds, cumulative; +Inf is the count.
	for _, f := range fams {
		if f.GetName() != "wasmgate_event_duration_seconds" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		cum := map[float64]uint64{}
		for _, b := range h.GetBucket() {
			cum[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		// 20µs and 3s were observed.
		if h.GetSampleCount() != 2 || len(h.GetBucket()) != metrics.NumBuckets-1 || cum[10e-6] != 0 || cum[25e-6] != 1 || cum[2.5] != 1 || cum[5] != 2 {
			t.Errorf("event histogram %v", h)
		}
	}
}

// TestMetrics_SeriesDocumented: every series has a row in
// docs/ARCHITECTURE.md's table with its type and labels, so the table
// cannot drift from seriesTable.
func TestMetrics_SeriesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range seriesTable() {
		labels := "`" + strings.Join(d.labels, "`, `") + "`"
		if len(d.labels) == 0 {
			labels = ""
		}
		row := regexp.MustCompile(`(?m)^\| ` + "`" + regexp.QuoteMeta(d.name) + "`" + ` \| ` + d.kind.String() + ` \| ` + regexp.QuoteMeta(labels) + `[ |]`)
		if !row.Match(doc) {
			t.Errorf("docs/ARCHITECTURE.md has no row \"| `%s` | %s | %s…\"", d.name, d.kind, labels)
		}
	}
}
