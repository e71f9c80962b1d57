package push

import (
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/runtime"
)

// TestFormatMetrics_EscapesLabels checks label values are escaped as the
// Prometheus text format says (backslash, double quote, line feed) and that
// everything else, tabs, control bytes and UTF-8 included, stays as is,
// where Go's %q would write escapes Prometheus does not know.
func TestFormatMetrics_EscapesLabels(t *testing.T) {
	name := "a\"b\\c\nd\te\x01é"
	st := Status{Clients: 3, Backends: 2, BackendsRefused: 7, Modules: []ModuleStatus{{Stats: runtime.Stats{Module: name, Events: 5}}}}
	out := formatMetrics(st)
	want := "wasmgate_events_total{module=\"a\\\"b\\\\c\\nd\te\x01é\"} 5\n"
	if !strings.Contains(out, want) {
		t.Fatalf("metrics lack %q:\n%s", want, out)
	}
	for _, line := range []string{"wasmgate_backends 2\n", "wasmgate_backends_refused_total 7\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	// Every sample is one line: a raw newline in a label would split one.
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "wasmgate_") {
			t.Errorf("stray line %q", line)
		}
	}
}
