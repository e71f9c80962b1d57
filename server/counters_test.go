package server

import (
	"testing"

	"github.com/wasmgate/wasmgate/internal/transport"
)

// BenchmarkTraffic_Totals is what a scrape pays for messages and bytes by
// module with 19,000 clients connected (make bench's idle load).
func BenchmarkTraffic_Totals(b *testing.B) {
	tr := newTraffic()
	for range 19_000 {
		tr.track(&transport.Conn{})
	}
	for b.Loop() {
		_ = tr.totals()
	}
}

// BenchmarkTraffic_TrackRetire is what a connection pays, once, to be
// counted: a set insert at connect, a delete and an add at close.
func BenchmarkTraffic_TrackRetire(b *testing.B) {
	tr := newTraffic()
	c := &transport.Conn{}
	for b.Loop() {
		tr.track(c)
		tr.retire(c)
	}
}

// TestTraffic_ClosedConnectionsKeepTheirCounts: a connection that leaves
// moves its counts to its module's total; live ones are added at read.
func TestTraffic_ClosedConnectionsKeepTheirCounts(t *testing.T) {
	tr := newTraffic()
	a, b := &transport.Conn{}, &transport.Conn{}
	tr.track(a)
	tr.track(b)
	if got := tr.totals()[""]; got.Connections != 2 {
		t.Fatalf("two live: %+v", got)
	}
	tr.retire(a)
	if got := tr.totals()[""]; got.Connections != 1 {
		t.Fatalf("one retired: %+v", got)
	}
}
