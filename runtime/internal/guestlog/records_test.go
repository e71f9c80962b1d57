package guestlog

import (
	"context"
	"log/slog"
	"sync"
)

// recordHandler is a slog.Handler that keeps every record, so tests can
// count them and look at their attributes.
type recordHandler struct {
	mu      sync.Mutex
	records []record
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]slog.Value
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message, attrs: map[string]slog.Value{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	return nil
}

func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) all() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.records...)
}

// withMsg returns the records whose message is msg.
func (h *recordHandler) withMsg(msg string) []record {
	var out []record
	for _, r := range h.all() {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}
