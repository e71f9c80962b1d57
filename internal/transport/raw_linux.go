package transport

import (
	"net"
	"syscall"
)

// rawWriter makes the non-blocking write(2)s of direct writes (see
// conn.sendNow) on a socket's file descriptor. Going around the runtime's
// poller is what lets an idle caller write a frame without a goroutine
// switch and without arming a write deadline; Linux is where it is
// measured (docs/BENCHMARKS.md), other platforms use conn_other.go.
type rawWriter struct {
	rc syscall.RawConn
	// Arguments and results of fn (a method value made once, so a write
	// allocates no closure).
	buf []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// newRawWriter returns nc's raw writer, or nil if nc has no file
// descriptor (every write then goes through the writer goroutine).
func newRawWriter(nc net.Conn) *rawWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.writeFD
	return w
}

// write is one non-blocking write(2) of b. n < len(b) with a nil error
// means the socket buffer is full; os.ErrDeadlineExceeded means a write
// deadline armed for a blocking write has fired.
func (w *rawWriter) write(b []byte) (int, error) {
	w.buf, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.fn)
	w.buf = nil
	if err != nil {
		return 0, err
	}
	if w.err == syscall.EAGAIN {
		return 0, nil
	}
	return w.n, w.err
}

// writeFD returns true: the write is not retried when the socket is full
// (that is the caller's cue to hand the rest to the writer goroutine).
func (w *rawWriter) writeFD(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.buf)
		if err == syscall.EINTR {
			continue
		}
		w.n, w.err = max(n, 0), err
		return true
	}
}
