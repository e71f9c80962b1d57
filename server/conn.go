package server

import (
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
)

// conn is one WebSocket client.
//
// Goroutines: the reader is the goroutine fasthttp hands the hijacked
// connection to (see ws.go); it owns reads and delivers events. A writer
// goroutine exists only while there is something to send: send starts it when
// the queue goes from empty to non-empty, and it exits when the queue is
// drained. An idle client therefore costs one goroutine, not two. All data
// frames are written by the writer; close frames use WriteControl, which the
// websocket package allows concurrently with other writes.
type conn struct {
	id     string
	module string // the module behind the client's route

	ws           *websocket.Conn
	queueSize    int
	writeTimeout time.Duration
	// deadlineSetAt is when the reader last moved the idle read deadline;
	// only the reader touches it.
	deadlineSetAt time.Time
	// writeDeadlineAt is when a writer last set the write deadline; writers
	// run one at a time, ordered by mu.
	writeDeadlineAt time.Time

	// writer counts the running writer goroutine (0 or 1). The reader waits
	// for it before returning the socket to fasthttp, which recycles it.
	writer sync.WaitGroup

	mu       sync.Mutex // guards queue, spare, writing, closing
	queue    []abi.Message
	spare    []abi.Message // the writer's last batch, reused as the next queue
	writing  bool          // a writer goroutine is running
	closing  bool          // no more sends are accepted
	closeMsg []byte        // close frame the writer sends after the queue, if closing
}

func newConn(id string, ws *websocket.Conn, queueSize int, writeTimeout time.Duration) *conn {
	return &conn{id: id, ws: ws, queueSize: queueSize, writeTimeout: writeTimeout}
}

// send queues msg. It never blocks: a full queue closes the client as a slow
// consumer and reports abi.ErrnoQueueFull.
func (c *conn) send(msg abi.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return abi.ErrnoNotFound
	}
	if len(c.queue) >= c.queueSize {
		c.closeLocked(websocket.ClosePolicyViolation, "slow consumer: send queue full")
		return abi.ErrnoQueueFull
	}
	c.queue = append(c.queue, msg)
	c.startWriterLocked()
	return nil
}

// close sends final (if any), then a close frame with code and reason, after
// everything already queued.
func (c *conn) close(final *abi.Message, code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return abi.ErrnoNotFound
	}
	if final != nil {
		c.queue = append(c.queue, *final)
	}
	c.closeLocked(code, reason)
	return nil
}

func (c *conn) closeLocked(code int, reason string) {
	c.closing = true
	c.closeMsg = websocket.FormatCloseMessage(code, reason)
	c.startWriterLocked()
}

func (c *conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		c.writer.Add(1)
		go c.writeLoop()
	}
}

// writeLoop drains the queue, then sends the close frame if one is due.
func (c *conn) writeLoop() {
	defer c.writer.Done()
	for {
		batch, closeMsg := c.takeBatch()
		if batch == nil {
			if closeMsg != nil {
				c.writeClose(closeMsg)
			}
			return
		}
		if !c.writeBatch(batch) {
			c.abort()
			return
		}
	}
}

// takeBatch swaps the queue out; nil means the writer should stop (writing
// is then false again, or the close frame is handed out exactly once).
func (c *conn) takeBatch() ([]abi.Message, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.writing = false
		msg := c.closeMsg
		c.closeMsg = nil
		return nil, msg
	}
	batch := c.queue
	c.queue, c.spare = c.spare[:0], nil
	return batch, nil
}

func (c *conn) writeBatch(batch []abi.Message) bool {
	// Rearming the deadline costs a timer update under a lock; do it only
	// when a tenth of the timeout has gone by.
	if now := time.Now(); now.Sub(c.writeDeadlineAt) > c.writeTimeout/10 {
		c.writeDeadlineAt = now
		_ = c.ws.SetWriteDeadline(now.Add(c.writeTimeout))
	}
	for i, m := range batch {
		typ := websocket.TextMessage
		if m.Binary {
			typ = websocket.BinaryMessage
		}
		if err := c.ws.WriteMessage(typ, m.Data); err != nil {
			return false
		}
		batch[i] = abi.Message{}
	}
	c.mu.Lock()
	if c.spare == nil && cap(batch) <= 2*c.queueSize {
		c.spare = batch[:0]
	}
	c.mu.Unlock()
	return true
}

// writeClose sends the close frame and gives the peer a moment to answer
// before the reader gives up on it.
func (c *conn) writeClose(msg []byte) {
	deadline := time.Now().Add(c.writeTimeout)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, deadline)
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
}

// abort drops the connection after a failed write; the reader then ends.
func (c *conn) abort() {
	c.mu.Lock()
	c.closing, c.writing, c.queue = true, false, nil
	c.mu.Unlock()
	_ = c.ws.NetConn().Close()
}

// closeGrace is how long the reader waits for the peer's close reply.
const closeGrace = 2 * time.Second
