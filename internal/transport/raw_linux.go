package transport

import (
	"io"
	"net"
	"sync"
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
	rc := rawConnOf(nc)
	if rc == nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.writeFD
	return w
}

// rawConnOf is nc's file descriptor access, or nil if it has none (a
// *tls.Conn, a wrapper).
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
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

// rawReader makes waitShallow's reads: non-blocking read(2)s into a
// pooled chunk, and the poller's waits between them, under a few frames
// of stack (see idle.go).
type rawReader struct {
	rc     syscall.RawConn
	chunks *sync.Pool // *[]byte of readBufferSize
	// Argument and results of fn (a method value made once, so a wait
	// allocates no closure): filter, the chunk and what filter left of it,
	// and read(2)'s error (io.EOF for 0 bytes).
	filter func([]byte) []byte
	small  [24]byte // the first bytes of each read (readFD)
	chunk  *[]byte
	rest   []byte
	err    error
	fn     func(fd uintptr) bool
}

// newRawReader returns nc's raw reader, or nil if nc has no file
// descriptor (a *tls.Conn): the reader then waits in NextReader.
func newRawReader(nc net.Conn, chunks *sync.Pool) *rawReader {
	rc := rawConnOf(nc)
	if rc == nil {
		return nil
	}
	r := &rawReader{rc: rc, chunks: chunks}
	r.fn = r.readFD
	return r
}

// read waits until the socket has bytes that filter (which may handle
// some of them) leaves, and returns them, rest, in chunk, which the
// caller puts back. err is the poller's (a read deadline, a closed
// socket); a nil chunk with a nil err means read(2) failed or met EOF:
// r.err says which.
func (r *rawReader) read(filter func([]byte) []byte) (chunk *[]byte, rest []byte, err error) {
	r.filter, r.chunk, r.rest, r.err = filter, nil, nil, nil
	err = r.rc.Read(r.fn)
	chunk, rest, r.chunk, r.rest, r.filter = r.chunk, r.rest, nil, nil, nil
	if err != nil {
		r.put(chunk)
		return nil, nil, err
	}
	return chunk, rest, nil
}

// readFD reads what the socket has and returns false (wait in the poller,
// then call again) when nothing is left of it once filtered. After a read
// shorter than asked for, which took all the socket had, it waits without
// a read(2) that would only say EAGAIN: the runtime's loop around it
// (poll.FD.RawRead) does not reset the poller's readiness, so bytes that
// arrive after that read wake the wait. No chunk is held while waiting.
//
// It reads into small first: a heartbeat's pong (6 bytes) is read,
// handled and done with there, without a chunk from the pool, whose slow
// path (another P's pool, an allocation) would grow a fresh reader's stack
// past its 2 KiB on every heartbeat round.
func (r *rawReader) readFD(fd uintptr) bool {
	for {
		n, err := readRetry(fd, r.small[:])
		switch {
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			r.err = err
			return true
		case n == 0:
			r.err = io.EOF
			return true
		}
		if n < len(r.small) {
			if rest := r.filter(r.small[:n]); len(rest) > 0 {
				r.keep(rest, nil)
				return true
			}
			return false
		}
		// More may wait: read it after what small holds, in a chunk.
		c := r.getChunk()
		k := copy(*c, r.small[:])
		m, err := readRetry(fd, (*c)[k:])
		if err != nil && err != syscall.EAGAIN {
			r.chunks.Put(c)
			r.err = err // what small held is lost with the connection
			return true
		}
		m = max(m, 0)
		if rest := r.filter((*c)[:k+m]); len(rest) > 0 {
			r.chunk, r.rest = c, rest
			return true
		}
		r.chunks.Put(c)
		if k+m < len(*c) {
			return false
		}
	}
}

// keep hands the bytes rest (in small, or in chunk c) to the caller, in a
// chunk.
func (r *rawReader) keep(rest []byte, c *[]byte) {
	if c == nil {
		c = r.getChunk()
		rest = (*c)[:copy(*c, rest)]
	}
	r.chunk, r.rest = c, rest
}

func (r *rawReader) getChunk() *[]byte {
	if c, _ := r.chunks.Get().(*[]byte); c != nil {
		return c
	}
	b := make([]byte, readBufferSize)
	return &b
}

// readRetry is read(2), retried on EINTR.
func readRetry(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), b)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// put returns a chunk to the pool.
func (r *rawReader) put(c *[]byte) {
	if c != nil {
		r.chunks.Put(c)
	}
}
