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

// rawReader makes waitShallow's reads: a non-blocking read(2) into a
// pooled chunk, and the poller's wait when there is nothing, under a few
// frames of stack (see idle.go).
type rawReader struct {
	rc     syscall.RawConn
	chunks *sync.Pool // *[]byte of readBufferSize
	// Results of fn (a method value made once, so a wait allocates no
	// closure). err is read(2)'s error, or io.EOF for 0 bytes.
	chunk *[]byte
	n     int
	err   error
	fn    func(fd uintptr) bool
}

// newRawReader returns nc's raw reader, or nil if nc has no file
// descriptor (a *tls.Conn): the reader then waits in NextReader.
func newRawReader(nc net.Conn, chunks *sync.Pool) *rawReader {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawReader{rc: rc, chunks: chunks}
	r.fn = r.readFD
	return r
}

// read waits until the socket has bytes (or an error, or EOF) and reads
// them into a chunk. err is the poller's (a read deadline, a closed
// socket; no chunk is held); otherwise n > 0 bytes are in chunk, or n ≤ 0
// and r.err is read(2)'s error or io.EOF. The caller puts the chunk back.
func (r *rawReader) read() (chunk *[]byte, n int, err error) {
	r.chunk, r.n, r.err = nil, 0, nil
	err = r.rc.Read(r.fn)
	chunk, r.chunk = r.chunk, nil
	if err != nil {
		r.put(chunk)
		return nil, 0, err
	}
	return chunk, r.n, nil
}

// readFD is one non-blocking read(2). It returns false (wait in the
// poller, then call again) when the socket has nothing, without holding a
// chunk while waiting.
func (r *rawReader) readFD(fd uintptr) bool {
	c, _ := r.chunks.Get().(*[]byte)
	if c == nil {
		b := make([]byte, readBufferSize)
		c = &b
	}
	for {
		n, err := syscall.Read(int(fd), *c)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			r.chunks.Put(c)
			return false
		case err != nil:
			r.n, r.err = -1, err
		case n == 0:
			r.n, r.err = 0, io.EOF
		default:
			r.n = n
		}
		r.chunk = c
		return true
	}
}

// put returns a chunk to the pool.
func (r *rawReader) put(c *[]byte) {
	if c != nil {
		r.chunks.Put(c)
	}
}
