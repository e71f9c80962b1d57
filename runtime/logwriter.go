package runtime

import (
	"bytes"
	"context"
	"log/slog"
)

// maxLogLine caps one guest log record; longer lines are cut and marked so a
// guest printing without newlines cannot grow host memory.
const maxLogLine = 4096

// logWriter turns a guest's stdout/stderr into log records, one per line,
// tagged with the module name. It belongs to one instance, so it needs no lock.
type logWriter struct {
	log    *slog.Logger
	module string
	line   []byte
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
		w.Flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *logWriter) add(p []byte) {
	room := maxLogLine - len(w.line)
	if len(p) > room {
		w.line = append(w.line, p[:room]...)
		w.line = append(w.line, " [truncated]"...)
		w.Flush()
		return
	}
	w.line = append(w.line, p...)
}

// Flush logs a pending partial line.
func (w *logWriter) Flush() {
	if len(w.line) == 0 {
		return
	}
	w.log.LogAttrs(context.Background(), slog.LevelInfo, string(w.line), slog.String("module", w.module), slog.String("stream", "guest"))
	w.line = w.line[:0]
}
