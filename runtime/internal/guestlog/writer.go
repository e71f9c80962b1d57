package guestlog

import (
	"bytes"
	"context"
	"log/slog"
)

// MaxLine caps one guest log record; longer lines are cut and marked so a
// guest printing without newlines cannot grow host memory.
const MaxLine = 4096

// TruncatedMark ends a record whose line was longer than MaxLine.
const TruncatedMark = " [truncated]"

// Writer turns a guest's stdout/stderr into log records, one per line,
// tagged with the module name. It belongs to one instance, so it needs no
// lock; the module's limiter, shared by its instances, decides which lines
// are logged (limiter.go).
type Writer struct {
	log    *slog.Logger
	module string
	limit  *Limiter // nil: every line is logged
	line   []byte
	// skipping is set once an over-long line has been logged (cut): the
	// rest of it, up to its newline, is discarded.
	skipping bool
	// now is the limiter's clock reading for the lines of the current
	// Write (a flood of short lines reads the clock once per write, not
	// once per line); valid only if stamped.
	now     int64
	stamped bool
}

// NewWriter returns the writer for one instance of module, logging to log
// what limit (nil: no limit) lets through.
func NewWriter(log *slog.Logger, module string, limit *Limiter) *Writer {
	return &Writer{log: log, module: module, limit: limit}
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.stamped = false
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.add(p)
			break
		}
		w.add(p[:i])
		w.endLine()
		p = p[i+1:]
	}
	return n, nil
}

// add appends p to the current line. A line that outgrows MaxLine is
// logged once, cut and marked, and the rest of it is dropped.
func (w *Writer) add(p []byte) {
	if w.skipping {
		return
	}
	room := MaxLine - len(w.line)
	if len(p) > room {
		w.line = append(w.line, p[:room]...)
		w.line = append(w.line, TruncatedMark...)
		w.emit()
		w.skipping = true
		return
	}
	w.line = append(w.line, p...)
}

// endLine handles a newline: it logs the line, or ends the skipped tail of
// one that was cut.
func (w *Writer) endLine() {
	if w.skipping {
		w.skipping = false
		return
	}
	w.emit()
}

// Flush logs a pending partial line.
func (w *Writer) Flush() {
	w.stamped, w.skipping = false, false
	w.emit()
}

// emit logs the current line, if any and if the limiter lets it through.
func (w *Writer) emit() {
	if len(w.line) == 0 {
		return
	}
	if w.allow(len(w.line)) {
		w.log.LogAttrs(context.Background(), slog.LevelInfo, string(w.line), slog.String("module", w.module), slog.String("stream", "guest"))
	}
	w.line = w.line[:0]
}

// allow asks the limiter, if any, about a line of n bytes.
func (w *Writer) allow(n int) bool {
	if w.limit == nil {
		return true
	}
	if !w.stamped {
		w.now, w.stamped = w.limit.now(), true
	}
	return w.limit.allowAt(w.now, n)
}
