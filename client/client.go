package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmgate/wasmgate/internal/wire"
)

// Defaults for the options.
const (
	// DefaultDialTimeout bounds each dial and auth exchange (WithDialTimeout).
	DefaultDialTimeout = 5 * time.Second
	// DefaultMaxPending is the default bound on requests in flight
	// (WithMaxPending).
	DefaultMaxPending = 4096
)

// Backoff between failed dials: doubles from minBackoff up to maxBackoff and
// is reset by a successful dial.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Buffers bigger than this are not kept in pooled calls or connections.
const maxKeptBuffer = 64 << 10

// Option configures a Client; pass options to Dial.
type Option func(*options)

type options struct {
	secret      string
	dialTimeout time.Duration
	maxPending  int
}

// WithSecret makes the client send {"cmd":"auth","secret":…} as the first
// line of every connection (and every reconnection). Needed when the server
// has push.secret set.
func WithSecret(secret string) Option { return func(o *options) { o.secret = secret } }

// WithDialTimeout bounds each dial, including the auth exchange
// (default DefaultDialTimeout).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithMaxPending bounds the number of requests in flight (sent or queued,
// not yet answered) over all goroutines (default DefaultMaxPending). A call
// made when the bound is reached waits, within its context, for a slot.
func WithMaxPending(n int) Option { return func(o *options) { o.maxPending = n } }

// Client is a connection to a wasmgate text port. It is safe for concurrent
// use: calls from any number of goroutines are pipelined over one TCP
// connection, written in batches by one writer goroutine and matched to their
// answers in order by one reader goroutine.
//
// When the connection breaks, every call in flight fails with an error
// wrapping ErrConnLost, and the next call redials. A call that has to dial
// and cannot returns the dial error; after failed dials the next dial waits,
// within the caller's context, for a backoff that doubles from 50ms to 5s.
type Client struct {
	addr string
	opt  options

	sem  chan struct{} // one token per request in flight
	pool sync.Pool     // *call

	cur atomic.Pointer[conn] // the current connection, nil before the first dial

	dialMu   chan struct{} // held (one token) while dialing or closing
	failures int           // consecutive failed dials, under dialMu
	nextDial time.Time     // no dial before this, under dialMu

	closed    atomic.Bool
	closeCtx  context.Context
	closeFunc context.CancelFunc
}

// Dial connects to the text port at addr (host:port), authenticating when
// WithSecret is given, and returns the client. ctx bounds this first dial
// only.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := options{dialTimeout: DefaultDialTimeout, maxPending: DefaultMaxPending}
	for _, f := range opts {
		f(&o)
	}
	if o.maxPending <= 0 {
		o.maxPending = DefaultMaxPending
	}
	if o.dialTimeout <= 0 {
		o.dialTimeout = DefaultDialTimeout
	}
	cl := &Client{
		addr:   addr,
		opt:    o,
		sem:    make(chan struct{}, o.maxPending),
		dialMu: make(chan struct{}, 1),
	}
	cl.closeCtx, cl.closeFunc = context.WithCancel(context.Background())
	cl.pool.New = func() any { return &call{done: make(chan struct{}, 1)} }
	cn, err := cl.dial(ctx)
	if err != nil {
		cl.closeFunc()
		return nil, err
	}
	cl.cur.Store(cn)
	return cl, nil
}

// Close closes the connection and stops the client's goroutines. Calls in
// flight fail with an error wrapping ErrConnLost and ErrClosed; later calls
// return ErrClosed.
func (cl *Client) Close() error {
	if cl.closed.Swap(true) {
		return nil
	}
	cl.closeFunc()
	cl.dialMu <- struct{}{} // waits for a dial in progress (it is being canceled)
	defer func() { <-cl.dialMu }()
	if cn := cl.cur.Load(); cn != nil {
		cn.fail(ErrClosed)
		<-cn.exited
	}
	return nil
}

// dial opens and authenticates a connection and starts its goroutines.
func (cl *Client) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cl.opt.dialTimeout)
	defer cancel()
	stop := context.AfterFunc(cl.closeCtx, cancel)
	defer stop()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cl.addr)
	if err != nil {
		if cl.closed.Load() {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("wasmgate: dial %s: %w", cl.addr, err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	if cl.opt.secret != "" {
		if err := cl.auth(ctx, nc, br); err != nil {
			nc.Close()
			if cl.closed.Load() {
				return nil, ErrClosed
			}
			return nil, err
		}
	}
	cn := &conn{
		cl:         cl,
		nc:         nc,
		br:         br,
		wq:         make(chan *call, cl.opt.maxPending),
		pending:    make(chan *call, cl.opt.maxPending),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		exited:     make(chan struct{}),
	}
	go cn.writeLoop()
	go cn.readLoop()
	return cn, nil
}

// auth sends the auth line and reads its answer, within ctx.
func (cl *Client) auth(ctx context.Context, nc net.Conn, br *bufio.Reader) error {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	line := wire.AppendString([]byte(`{"cmd":"auth","secret":`), cl.opt.secret)
	line = append(line, `,"id":0}`+"\n"...)
	if _, err := nc.Write(line); err != nil {
		return fmt.Errorf("wasmgate: auth %s: %w", cl.addr, ctxOr(ctx, err))
	}
	ans, err := br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("wasmgate: auth %s: %w", cl.addr, ctxOr(ctx, err))
	}
	r, ok := parseResponse(ans)
	if !ok {
		return fmt.Errorf("wasmgate: auth %s: %w: bad answer %q", cl.addr, ErrProtocol, ans)
	}
	if !r.ok {
		return fmt.Errorf("wasmgate: auth %s: %w", cl.addr, decodeError(r.errObj))
	}
	if !stop() {
		return fmt.Errorf("wasmgate: auth %s: %w", cl.addr, ctx.Err())
	}
	return nil
}

// ctxOr prefers the context's error (a deadline set because ctx ended) over
// the I/O error it caused.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// reconnect returns a live connection other than old, dialing if no other
// goroutine has already replaced it. Failed dials are spaced by a capped
// exponential backoff, waited for within ctx.
func (cl *Client) reconnect(ctx context.Context, old *conn) (*conn, error) {
	select {
	case cl.dialMu <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-cl.dialMu }()
	if cl.closed.Load() {
		return nil, ErrClosed
	}
	if cn := cl.cur.Load(); cn != nil && cn != old && !cn.isDead() {
		return cn, nil
	}
	if wait := time.Until(cl.nextDial); cl.failures > 0 && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-cl.closeCtx.Done():
			t.Stop()
			return nil, ErrClosed
		}
	}
	cn, err := cl.dial(ctx)
	if err != nil {
		cl.failures++
		delay := minBackoff << min(cl.failures-1, 16)
		cl.nextDial = time.Now().Add(min(delay, maxBackoff))
		return nil, err
	}
	cl.failures = 0
	cl.cur.Store(cn)
	return cn, nil
}

// Call states. A call is waiting until either its answer arrives (done) or
// its caller gives up (abandoned); whoever loses that race leaves the other
// to release the call.
const (
	stateWaiting uint32 = iota
	stateDone
	stateAbandoned
)

// call is one request. Calls are pooled: buf and resp keep their capacity.
type call struct {
	buf   []byte // the request line without its closing `,"id":N}\n`
	id    uint64
	resp  []byte // copy of the raw "result"
	err   error  // *Error or a connection error
	state atomic.Uint32
	done  chan struct{} // capacity 1; signaled when state becomes done
}

// newCall returns a pooled call with buf holding `{"cmd":"<cmd>"`.
func (cl *Client) newCall(cmd string) *call {
	c := cl.pool.Get().(*call)
	c.buf = append(c.buf[:0], `{"cmd":`...)
	c.buf = wire.AppendString(c.buf, cmd)
	return c
}

// str appends ,"key":"val". Keys are constants that need no escaping.
func (c *call) str(key, val string) {
	c.buf = append(c.buf, ',', '"')
	c.buf = append(c.buf, key...)
	c.buf = append(c.buf, '"', ':')
	c.buf = wire.AppendString(c.buf, val)
}

// strs appends ,"key":["v",…].
func (c *call) strs(key string, vals []string) {
	c.buf = append(c.buf, ',', '"')
	c.buf = append(c.buf, key...)
	c.buf = append(c.buf, '"', ':')
	c.buf = wire.AppendStrings(c.buf, vals)
}

// raw appends ,"key":<raw JSON>.
func (c *call) raw(key string, val []byte) {
	c.buf = append(c.buf, ',', '"')
	c.buf = append(c.buf, key...)
	c.buf = append(c.buf, '"', ':')
	c.buf = append(c.buf, val...)
}

// put returns c to the pool.
func (cl *Client) put(c *call) {
	if cap(c.buf) > maxKeptBuffer {
		c.buf = nil
	}
	if cap(c.resp) > maxKeptBuffer {
		c.resp = nil
	}
	c.err = nil
	cl.pool.Put(c)
}

// free ends a call whose roundTrip succeeded: its slot and the call are
// released. c must not be used afterwards.
func (cl *Client) free(c *call) {
	<-cl.sem
	cl.put(c)
}

// roundTrip sends c and waits for its answer. On a nil error c.resp holds the
// raw result and the caller must call free(c) when done with it. On an error
// c is no longer the caller's.
func (cl *Client) roundTrip(ctx context.Context, c *call) error {
	if cl.closed.Load() {
		cl.put(c)
		return ErrClosed
	}
	if err := ctx.Err(); err != nil { // a finished context never sends
		cl.put(c)
		return err
	}
	select {
	case cl.sem <- struct{}{}:
	default:
		select {
		case cl.sem <- struct{}{}:
		case <-ctx.Done():
			cl.put(c)
			return ctx.Err()
		}
	}
	c.state.Store(stateWaiting)
	cn := cl.cur.Load()
	for attempt := 0; cn == nil || !cn.enqueue(c); attempt++ {
		var err error
		if attempt == 2 {
			err = fmt.Errorf("%w: connection broke at once after dialing", ErrConnLost)
		} else {
			cn, err = cl.reconnect(ctx, cn)
		}
		if err != nil {
			cl.free(c)
			return err
		}
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.state.CompareAndSwap(stateWaiting, stateAbandoned) {
			return ctx.Err() // the connection releases c
		}
		<-c.done // the answer arrived meanwhile: use it
	}
	if err := c.err; err != nil {
		cl.free(c)
		return err
	}
	return nil
}

// finish completes c with the answer already stored in it (or err).
func (cl *Client) finish(c *call, err error) {
	c.err = err
	if c.state.CompareAndSwap(stateWaiting, stateDone) {
		c.done <- struct{}{}
		return
	}
	cl.free(c) // abandoned by its caller
}

// conn is one TCP connection and its two goroutines.
type conn struct {
	cl *Client
	nc net.Conn
	br *bufio.Reader

	mu   sync.RWMutex // enqueue holds it shared; fail holds it to set dead
	dead bool
	err  error // why it failed, set before done is closed

	wq      chan *call // calls to write; capacity maxPending, so sends never block
	pending chan *call // written calls awaiting answers, oldest first
	nextID  uint64     // writer's

	once       sync.Once
	done       chan struct{} // closed by fail
	writerDone chan struct{} // closed when writeLoop returns
	exited     chan struct{} // closed when every call has been finished

	long []byte // reader's buffer for lines longer than br's buffer
}

// enqueue hands c to the writer, or reports false if the connection is dead.
// It never blocks: at most maxPending calls exist at once.
func (cn *conn) enqueue(c *call) bool {
	cn.mu.RLock()
	if cn.dead {
		cn.mu.RUnlock()
		return false
	}
	cn.wq <- c
	cn.mu.RUnlock()
	return true
}

func (cn *conn) isDead() bool {
	cn.mu.RLock()
	defer cn.mu.RUnlock()
	return cn.dead
}

// fail marks the connection dead and closes the socket; the reader then
// fails every call still queued or pending.
func (cn *conn) fail(cause error) {
	cn.once.Do(func() {
		cn.mu.Lock()
		cn.dead = true
		cn.err = fmt.Errorf("%w: %w", ErrConnLost, cause)
		cn.mu.Unlock()
		close(cn.done)
		cn.nc.Close()
	})
}

// writeLoop writes queued requests, adding their ids, and flushes whenever
// the queue is empty.
func (cn *conn) writeLoop() {
	defer close(cn.writerDone)
	bw := bufio.NewWriterSize(cn.nc, 64<<10)
	var num [32]byte
	for {
		var c *call
		select {
		case c = <-cn.wq:
		case <-cn.done:
			return
		}
		for c != nil {
			if c.state.Load() == stateAbandoned {
				cn.cl.free(c) // its caller gave up before it was sent
			} else {
				cn.nextID++
				c.id = cn.nextID
				cn.pending <- c // before writing: the answer may come at once
				bw.Write(c.buf)
				line := append(num[:0], `,"id":`...)
				line = strconv.AppendUint(line, c.id, 10)
				bw.Write(append(line, '}', '\n'))
			}
			select {
			case c = <-cn.wq:
			default:
				c = nil
			}
		}
		if err := bw.Flush(); err != nil {
			cn.fail(err)
			return
		}
	}
}

// readLoop matches each answer line to the oldest pending call. When the
// connection ends it fails every call that is left.
func (cn *conn) readLoop() {
	var num [24]byte
	for {
		line, err := cn.readLine()
		if err != nil {
			cn.fail(err)
			break
		}
		if len(line) == 0 {
			continue
		}
		var c *call
		select {
		case c = <-cn.pending:
		default:
			cn.fail(fmt.Errorf("%w: answer with no request pending: %.200q", ErrProtocol, line))
		}
		if c == nil {
			break
		}
		r, ok := parseResponse(line)
		if !ok {
			cn.pending <- c // never blocks: c's slot was just freed
			cn.fail(fmt.Errorf("%w: bad answer line: %.200q", ErrProtocol, line))
			break
		}
		// The server cannot echo the id of a request it could not parse
		// (bad_json, line_too_long): accept an error without id.
		if r.id != nil || r.ok {
			if string(r.id) != string(strconv.AppendUint(num[:0], c.id, 10)) {
				cn.pending <- c
				cn.fail(fmt.Errorf("%w: answer id %s, expected %d", ErrProtocol, r.id, c.id))
				break
			}
		}
		if r.ok {
			c.resp = append(c.resp[:0], r.result...)
			cn.cl.finish(c, nil)
		} else {
			c.resp = c.resp[:0]
			cn.cl.finish(c, decodeError(r.errObj))
		}
	}
	<-cn.writerDone
	for {
		select {
		case c := <-cn.pending:
			cn.cl.finish(c, cn.err)
			continue
		default:
		}
		break
	}
	for {
		select {
		case c := <-cn.wq:
			cn.cl.finish(c, cn.err)
			continue
		default:
		}
		break
	}
	close(cn.exited)
}

// readLine returns the next line without its "\n" or "\r\n".
func (cn *conn) readLine() ([]byte, error) {
	line, err := cn.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		if cap(cn.long) > maxKeptBuffer {
			cn.long = nil
		}
		cn.long = append(cn.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = cn.br.ReadSlice('\n')
			cn.long = append(cn.long, line...)
		}
		line = cn.long
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// decodeError turns the raw "error" object of an ok:false answer into *Error.
func decodeError(raw []byte) error {
	e := &Error{}
	if err := json.Unmarshal(raw, e); err != nil || e.Code == "" {
		return &Error{Code: CodeInternal, Message: "malformed error answer: " + string(raw)}
	}
	return e
}
