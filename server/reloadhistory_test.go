package server

import (
	"strconv"
	"testing"

	"github.com/wasmgate/wasmgate/internal/push"
)

// TestReloadHistory_KeepsTheLast: the history keeps the last
// maxReloadHistory events, oldest first, stamped, and list returns a copy.
func TestReloadHistory_KeepsTheLast(t *testing.T) {
	var h reloadHistory
	for i := range maxReloadHistory + 7 {
		h.add(push.ReloadEvent{Module: strconv.Itoa(i), Action: "loaded"})
	}
	l := h.list()
	if len(l) != maxReloadHistory || l[0].Module != "7" || l[len(l)-1].Module != strconv.Itoa(maxReloadHistory+6) || l[0].Time.IsZero() {
		t.Fatalf("history: %d events, first %+v, last %+v", len(l), l[0], l[len(l)-1])
	}
	l[0].Module = "changed"
	if h.list()[0].Module != "7" {
		t.Fatal("list shares its slice with the history")
	}
}
