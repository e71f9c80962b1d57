// Package logtest is a slog.Handler for tests that keeps every record, so
// a test can count them and look at their attributes.
package logtest

import (
	"context"
	"log/slog"
	"sync"
)

// Handler keeps every record it handles. The zero value is ready to use.
type Handler struct {
	mu      sync.Mutex
	records []Record
}

// Record is one handled record.
type Record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]slog.Value
}

// Enabled implements slog.Handler: every level.
func (h *Handler) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	rec := Record{Level: r.Level, Msg: r.Message, Attrs: map[string]slog.Value{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	return nil
}

// WithAttrs implements slog.Handler; the attributes are dropped.
func (h *Handler) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup implements slog.Handler; the group is dropped.
func (h *Handler) WithGroup(string) slog.Handler { return h }

// All returns a copy of the records so far.
func (h *Handler) All() []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Record(nil), h.records...)
}

// WithMsg returns the records whose message is msg.
func (h *Handler) WithMsg(msg string) []Record {
	var out []Record
	for _, r := range h.All() {
		if r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}
