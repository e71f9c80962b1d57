package runtime

import (
	"bytes"
	"context"
	"log/slog"
)

// maxLogLine caps one guest log record; longer lines are cut and marked so a
// guest printing without newlines cannot grow host memory.
const maxLogLine = 4096

// truncatedMark ends a record whose line was longer than maxLogLine.
const truncatedMark = " [truncated]"

// logWriter turns a guest's stdout/stderr into log records, one per line,
// tagged with the module name. It belongs to one instance, so it needs no lock.
type logWriter struct {
	log    *slog.Logger
	module string
	line   []byte
	// skipping is set once an over-long line has been logged (cut): the
	// rest of it, up to its newline, is discarded.
	skipping bool
}

func newLogWriter(log *slog.Logger, module string) *logWriter {
	return &logWriter{log: log, module: module}
}

// Write implements io.Writer.
func (w *logWriter) Write(p []byte) (int, error) {
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

// add appends p to the current line. A line that outgrows maxLogLine is
// logged once, cut and marked, and the rest of it is dropped.
func (w *logWriter) add(p []byte) {
	if w.skipping {
		return
	}
	room := maxLogLine - len(w.line)
	if len(p) > room {
		w.line = append(w.line, p[:room]...)
		w.line = append(w.line, truncatedMark...)
		w.emit()
		w.skipping = true
		return
	}
	w.line = append(w.line, p...)
}

// endLine handles a newline: it logs the line, or ends the skipped tail of
// one that was cut.
func (w *logWriter) endLine() {
	if w.skipping {
		w.skipping = false
		return
	}
	w.emit()
}

// Flush logs a pending partial line.
func (w *logWriter) Flush() {
	w.skipping = false
	w.emit()
}

// emit logs the current line, if any.
func (w *logWriter) emit() {
	if len(w.line) == 0 {
		return
	}
	w.log.LogAttrs(context.Background(), slog.LevelInfo, string(w.line), slog.String("module", w.module), slog.String("stream", "guest"))
	w.line = w.line[:0]
}
