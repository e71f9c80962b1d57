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
	conn   *Conn      // whose stripControl filters what is read
	// Results of fn (a method value made once, so a wait allocates no
	// closure): the chunk and what stripControl left of it, read(2)'s
	// error after those bytes (io.EOF for 0 bytes), and wake: a ping was
	// read, whose pong is written once out of the poller's loop.
	small [24]byte // the first bytes of each read (readFD)
	chunk *[]byte
	rest  []byte
	err   error
	wake  bool
	// noWait: readFD returns on EAGAIN instead of waiting (readNow);
	// more: it returned with bytes maybe left unread (the pass bound, or a
	// ping read by a read that filled its buffer); hup: the Poller's event
	// reported a close or an error, which a short read may have taken
	// along with the bytes before it (readNow).
	noWait, more, hup bool
	fn                func(fd uintptr) bool
}

// maxStripPasses bounds the reads of whole pings and pongs one call of
// read makes, so that a flood of them cannot keep the reader from seeing
// a deadline or a Close (both are checked between calls).
const maxStripPasses = 16

// newRawReader returns nc's raw reader for conn, or nil if nc has no file
// descriptor (a *tls.Conn): the reader then waits in NextReader.
func newRawReader(nc net.Conn, conn *Conn, chunks *sync.Pool) *rawReader {
	rc := rawConnOf(nc)
	if rc == nil {
		return nil
	}
	r := &rawReader{rc: rc, chunks: chunks, conn: conn}
	r.fn = r.readFD
	return r
}

// read waits until the socket has something and returns it: the bytes
// stripControl left, rest, in chunk (the caller puts it back), and r.err,
// read(2)'s error or io.EOF after them. Both may be empty (a ping to
// answer, r.wake; or the pass bound): the caller calls again. err is the
// poller's (a read deadline, a closed socket).
func (r *rawReader) read() (chunk *[]byte, rest []byte, err error) {
	r.chunk, r.rest, r.err, r.wake, r.more = nil, nil, nil, false, false
	err = r.rc.Read(r.fn)
	chunk, rest, r.chunk, r.rest = r.chunk, r.rest, nil, nil
	if err != nil {
		r.put(chunk)
		return nil, nil, err
	}
	return chunk, rest, nil
}

// readFD reads the socket until it has nothing (EAGAIN: return false, to
// wait in the poller and be called again; no chunk is held while
// waiting), or until it has read something to hand over. Whole pings and
// pongs are handled on the way (stripControl). It reads until EAGAIN even
// after a short read: a close (FIN) or reset that came with the last bytes
// raises no new readiness, and only another read(2) sees it.
//
// It reads into small first: a heartbeat's pong (6 bytes) is read,
// handled and done with there, without a chunk from the pool, whose slow
// path (another P's pool, an allocation) would grow a fresh reader's stack
// past its 2 KiB on every heartbeat round.
func (r *rawReader) readFD(fd uintptr) bool {
	for range maxStripPasses {
		n, err := readRetry(fd, r.small[:])
		switch {
		case err == syscall.EAGAIN:
			return r.noWait
		case err != nil:
			r.err = err
			return true
		case n == 0:
			r.err = io.EOF
			return true
		}
		buf, c := r.small[:n], (*[]byte)(nil)
		// short: the read emptied the socket (or stopped at a FIN).
		short := n < len(r.small)
		if n == len(r.small) { // more may wait: read it after these, in a chunk
			c = r.getChunk()
			k := copy(*c, r.small[:])
			m, err := readRetry(fd, (*c)[k:])
			switch {
			case err == syscall.EAGAIN:
				m = 0
			case err != nil:
				m, r.err = 0, err // after the bytes already read
			case m == 0:
				r.err = io.EOF
			}
			buf = (*c)[:k+m]
			short = k+m < len(*c)
		}
		// A short read with a close or reset behind it (hup) took the FIN
		// along (the kernel reads up to it), and nothing raises a new
		// event: only another read(2) sees it.
		short = short && !r.hup
		rest := r.conn.stripControl(buf)
		if len(rest) > 0 || r.err != nil || r.wake {
			// A ping's: what this read did not take raises no new event
			// in the Poller, which must look again (a poke) once it has
			// answered the pings it holds.
			r.more = r.wake && !short
			r.keep(rest, c)
			return true
		}
		r.put(c)
		if r.noWait && short && n < len(r.small) {
			// A short read emptied the socket: no read(2) is spent on the
			// EAGAIN. Whatever arrives after it (bytes, a close, a reset)
			// raises an event of its own in the Poller (edge-triggered).
			return true
		}
	}
	r.more = true
	return true // the pass bound: nothing to hand over, the caller reads again
}

// readNow is read without the wait: it returns (with nothing) if the
// socket has nothing to read. The Poller's reads of a ready socket.
// hup is what the event reported: a close or an error with the bytes.
func (r *rawReader) readNow(hup bool) (chunk *[]byte, rest []byte, err error) {
	r.noWait, r.hup = true, hup
	chunk, rest, err = r.read()
	r.noWait, r.hup = false, false
	return chunk, rest, err
}

// keep hands rest (in small, or in chunk c) to the caller, in a chunk.
func (r *rawReader) keep(rest []byte, c *[]byte) {
	if len(rest) == 0 {
		r.put(c)
		return
	}
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
