package transport

import (
	"bytes"
	"fmt"
	"hash/maphash"
	goruntime "runtime"
	"sync"

	"github.com/wasmgate/wasmgate/abi"
)

// hub holds the clients connected to this node, for delivery. Which clients
// exist cluster-wide, and their uids and groups, is the Registry's job; the
// hub only maps a local client id to its connection.
type Hub struct {
	seed   maphash.Seed
	shards [hubShards]hubShard
	lanes  []fanLane // fan-out lanes, each owning the shards i with i%len(lanes) == its index
}

const hubShards = 64

type hubShard struct {
	mu    sync.RWMutex // guards conns
	conns map[string]*Conn
}

func NewHub() *Hub {
	h := &Hub{seed: maphash.MakeSeed(), lanes: newLanes()}
	for i := range h.shards {
		h.shards[i].conns = make(map[string]*Conn)
	}
	return h
}

func (h *Hub) shard(id string) *hubShard {
	return &h.shards[h.shardIndex(id)]
}

func (h *Hub) Add(c *Conn) {
	s := h.shard(c.id)
	s.mu.Lock()
	s.conns[c.id] = c
	s.mu.Unlock()
}

func (h *Hub) Remove(id string) {
	s := h.shard(id)
	s.mu.Lock()
	delete(s.conns, id)
	s.mu.Unlock()
}

func (h *Hub) Get(id string) *Conn {
	s := h.shard(id)
	s.mu.RLock()
	c := s.conns[id]
	s.mu.RUnlock()
	return c
}

// getBytes is get for an id held as bytes (no string allocated).
func (h *Hub) GetBytes(id []byte) *Conn {
	s := &h.shards[maphash.Bytes(h.seed, id)%hubShards] // hashes as maphash.String does
	s.mu.RLock()
	c := s.conns[string(id)]
	s.mu.RUnlock()
	return c
}

// each calls fn for every connection, outside the shard locks (on a
// snapshot), so fn may block or send.
func (h *Hub) Each(fn func(*Conn)) {
	var batch []*Conn
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for _, c := range s.conns {
			batch = append(batch, c)
		}
		s.mu.RUnlock()
		for _, c := range batch {
			fn(c)
		}
		batch = batch[:0]
	}
}

func (h *Hub) Count() int {
	n := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		n += len(s.conns)
		s.mu.RUnlock()
	}
	return n
}

// Fan-out lanes.
//
// A send to many clients (a group, several uids, everyone) must not cost its
// caller — a guest under its event deadline, or a backend connection —
// time proportional to the recipients: with 3,000 members a send_to_group
// took milliseconds (a queue append and a writer goroutine per member), and
// 60 senders pushed calls past the deadline. So the caller only snapshots
// the recipients (the registry's member list) and appends the snapshot, as
// one job, to every lane; each lane's worker (a goroutine that exists only
// while its lane has work) picks the recipients that belong to it and hands
// the message to their conn.send. Snapshotting at the call keeps the
// membership semantics: a client that joins after the send returned does
// not get the message.
//
// Ordering. A client's messages used to be queued in the order of the
// sends that made them (a send returned after queueing), and that must stay
// true: a send that returned before another began reaches every common
// recipient first, whether it was handed off or not. Every client belongs to
// one lane (its hub shard modulo the lane count), and while a lane has work
// pending (busy), every send, fan-out or not, and every close_client to a
// client of that lane goes through the lane, behind what is pending; only
// when the lane is idle may a send go straight to conn.send. A lane stays
// busy until its last job is delivered, so "idle" means every earlier send
// is in the clients' own queues.
//
// Batching. A lane that finds several jobs pending (its sends came faster
// than it delivers them: a burst, or messages arriving back to back from
// Redis on a cluster node) delivers them as a round of at most laneRound
// jobs and holds each idle client's writer back until the end of the round
// (Conn.enqueueHeld): a client's messages of the round then leave in one
// write(2). Started at the first message, the writer would write each one
// by itself, and on a node that receives a burst message by message that
// costs a syscall per delivery instead of per batch. A lone job (the lane
// kept up) has nothing to batch: the lane writes it to each idle client
// itself (Conn.sendNowShared, one non-blocking write(2)) rather than start
// a writer goroutine per recipient. 3,000 runnable writers per message
// queue everything else on the node behind them: the backend's next
// command, and on a cluster node the PUBLISH reply sendToGroup waits for,
// which spread a burst thin and left nothing to batch on any node.
// (Writing every job directly, a backlog too, was tried and lost the
// batching: a 1-node burst fell to 80,858 deliveries/s.)
//
// Bound. A lane holds at most fanLaneBytes of jobs (recipients plus message
// bytes, the message counted once per lane); a send that would overflow it
// fails with abi.ErrnoQueueFull at once, so a guest sending in a loop gets
// an error, not a longer deadline or more memory.

// FanoutInline is the largest number of recipients a send delivers itself
// (when their lanes are idle); larger fan-outs are handed to the lanes.
const FanoutInline = 64

// fanLaneBytes bounds the work pending in one lane.
const fanLaneBytes = 16 << 20

// laneRound is the most jobs a lane delivers before it starts the writers
// it held back: a round's first recipients wait for the whole round.
const laneRound = 16

// fanLane is one FIFO of fan-out jobs and its worker.
type fanLane struct {
	index int        // in hub.lanes
	mu    sync.Mutex // guards the fields below
	jobs  []fanJob
	busy  bool // a worker runs: jobs are pending or being delivered
	bytes int  // cost of the jobs not yet delivered
	// held are the clients whose writers the worker held back in the
	// current round (only the worker touches it).
	held []*Conn
}

// fanJob is a delivery to the clients of one lane: ids (resolved by the
// worker, which skips those of other lanes: the same slice is given to every
// lane) or conns (resolved by the caller), minus skip. close makes it a
// close_client: msg, if final, then a normal close.
type fanJob struct {
	msg   abi.Message
	z     *Deflated // msg compressed, shared by the lanes (nil: one recipient)
	ids   []string  // shared by the lanes; read-only
	conns []*Conn
	skip  map[string]struct{} // shared between the lanes of one send; read-only
	close bool
	final bool // close: msg is the final message
	code  int  // close: the close code
}

func (j *fanJob) cost() int { return 64 + len(j.msg.Data) + 16*len(j.ids) + 8*len(j.conns) }

func newLanes() []fanLane {
	lanes := make([]fanLane, min(max(goruntime.GOMAXPROCS(0), 1), 16))
	for i := range lanes {
		lanes[i].index = i
	}
	return lanes
}

// laneOf is the lane of client id: a function of its hub shard, so that
// each lane owns whole shards (fanoutAll walks them by shard).
func (h *Hub) laneOf(id string) *fanLane {
	return &h.lanes[h.shardIndex(id)%uint64(len(h.lanes))]
}

func (h *Hub) shardIndex(id string) uint64 { return maphash.String(h.seed, id) % hubShards }

// enqueue appends jobs (one per lane, nil entries skipped) to their lanes,
// all or none: abi.ErrnoQueueFull if one of them lacks room.
func (h *Hub) enqueue(jobs []fanJob) error {
	for i := range jobs {
		if jobs[i].empty() {
			continue
		}
		l := &h.lanes[i]
		l.mu.Lock()
		full := l.bytes+jobs[i].cost() > fanLaneBytes
		l.mu.Unlock()
		if full {
			return fmt.Errorf("fan-out queue full (%d bytes pending in a lane): %w", fanLaneBytes, abi.ErrnoQueueFull)
		}
	}
	// Between the check and the append another sender may fill a lane a
	// little past the bound: it is a bound on growth, not an exact size.
	for i := range jobs {
		if !jobs[i].empty() {
			h.lanes[i].push(h, jobs[i])
		}
	}
	return nil
}

func (j *fanJob) empty() bool { return len(j.ids) == 0 && len(j.conns) == 0 }

// push appends j and starts the worker if it is not running.
func (l *fanLane) push(h *Hub, j fanJob) {
	l.mu.Lock()
	l.jobs = append(l.jobs, j)
	l.bytes += j.cost()
	start := !l.busy
	l.busy = true
	l.mu.Unlock()
	if start {
		go h.runLane(l)
	}
}

// runLane is a lane's worker: it delivers jobs in order until none is left,
// then marks the lane idle and exits.
func (h *Hub) runLane(l *fanLane) {
	for {
		l.mu.Lock()
		jobs := l.jobs
		l.jobs = nil
		if len(jobs) == 0 {
			l.busy = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		done := 0
		if len(jobs) == 1 {
			h.deliverJob(l.index, &jobs[0], deliverDirect, nil)
			done += jobs[0].cost()
		}
		for start := 0; len(jobs) > 1 && start < len(jobs); start += laneRound {
			for i := start; i < min(start+laneRound, len(jobs)); i++ {
				h.deliverJob(l.index, &jobs[i], deliverHeld, &l.held)
				done += jobs[i].cost()
			}
			for _, c := range l.held {
				c.startHeld()
			}
			clear(l.held)
			l.held = l.held[:0]
		}
		clear(jobs) // drop the messages and ids now
		l.mu.Lock()
		l.bytes -= done
		l.mu.Unlock()
	}
}

// How a lane hands a message to a client (deliverJob).
const (
	// deliverDirect: the lane writes to an idle client itself
	// (Conn.sendNowShared, one non-blocking write(2)); a busy client's
	// writer gets it in its queue.
	deliverDirect = iota
	// deliverHeld: queued, the writer of an idle client held back to the
	// end of the round (Conn.enqueueHeld).
	deliverHeld
)

// deliverJob delivers j to the clients of lane, directly or held
// (deliverDirect, deliverHeld); held clients are appended to *held, for
// the caller to start.
func (h *Hub) deliverJob(lane int, j *fanJob, how int, held *[]*Conn) {
	if j.close {
		var final *abi.Message
		if j.final {
			final = &j.msg
		}
		_ = j.conns[0].Close(final, j.code, "")
		return
	}
	send := func(c *Conn) {
		if how == deliverDirect {
			_ = c.sendNowShared(j.msg, j.z, false)
		} else if ok, _ := c.enqueueHeld(j.msg, j.z); ok {
			*held = append(*held, c)
		}
	}
	for _, c := range j.conns {
		if _, ok := j.skip[c.id]; !ok {
			send(c)
		}
	}
	for _, id := range j.ids {
		i := h.shardIndex(id)
		if int(i)%len(h.lanes) != lane {
			continue
		}
		if _, ok := j.skip[id]; ok {
			continue
		}
		s := &h.shards[i]
		s.mu.RLock()
		c := s.conns[id]
		s.mu.RUnlock()
		if c != nil {
			send(c)
		}
	}
}

// sendOrdered is conn.send behind whatever is pending in c's lane: straight
// to c when the lane is idle, else as a job of the lane (msg.Data copied if
// borrowed).
func (h *Hub) SendOrdered(c *Conn, msg abi.Message, direct, borrowed bool) error {
	return h.sendOrdered(c, msg, nil, direct, borrowed)
}

// SendOrderedShared is SendOrdered of a message sent to several clients
// one by one: z (NewDeflated, one per message) lets those that negotiated
// permessage-deflate share one compression of it.
func (h *Hub) SendOrderedShared(c *Conn, msg abi.Message, z *Deflated, direct bool) error {
	return h.sendOrdered(c, msg, z, direct, false)
}

// sendOrdered is SendOrdered of a message with its shared compressed form
// z (a fan-out; nil for a message to one client).
func (h *Hub) sendOrdered(c *Conn, msg abi.Message, z *Deflated, direct, borrowed bool) error {
	l := h.laneOf(c.id)
	l.mu.Lock()
	if !l.busy {
		l.mu.Unlock()
		if direct {
			return c.sendNowShared(msg, z, borrowed)
		}
		return c.enqueueShared(msg, z, borrowed)
	}
	defer l.mu.Unlock()
	j := fanJob{msg: msg, z: z, conns: []*Conn{c}}
	if l.bytes+j.cost() > fanLaneBytes {
		return fmt.Errorf("fan-out queue full (%d bytes pending in a lane): %w", fanLaneBytes, abi.ErrnoQueueFull)
	}
	if borrowed {
		j.msg.Data = bytes.Clone(msg.Data)
	}
	l.jobs = append(l.jobs, j)
	l.bytes += j.cost()
	return nil
}

// closeOrdered is conn.close (final, then a normal close) behind whatever
// is pending in c's lane.
func (h *Hub) CloseOrdered(c *Conn, final *abi.Message, code int) error {
	if code == 0 {
		code = closeNormal
	}
	l := h.laneOf(c.id)
	l.mu.Lock()
	if !l.busy {
		l.mu.Unlock()
		return c.Close(final, code, "")
	}
	defer l.mu.Unlock()
	j := fanJob{conns: []*Conn{c}, close: true, code: code}
	if final != nil {
		j.msg, j.final = *final, true
	}
	// Bounded like a send: a caller repeating close_client with a large
	// final message while the lane is behind must not grow it past the
	// lane's bound.
	if l.bytes+j.cost() > fanLaneBytes {
		return fmt.Errorf("fan-out queue full (%d bytes pending in a lane): %w", fanLaneBytes, abi.ErrnoQueueFull)
	}
	l.jobs = append(l.jobs, j)
	l.bytes += j.cost()
	return nil
}

// fanout hands msg to the lanes for every id not in skip (ids must hold no
// duplicates) and returns how many recipients it was handed to. Its cost to
// the caller is one append per lane, plus a pass over ids only when skip is
// not empty (for the count).
func (h *Hub) Fanout(ids []string, skip map[string]struct{}, msg abi.Message) (int, error) {
	n := len(ids)
	if len(skip) > 0 {
		for _, id := range ids {
			if _, ok := skip[id]; ok {
				n--
			}
		}
	}
	jobs := make([]fanJob, len(h.lanes))
	z := NewDeflated() // compressed once, if any recipient takes deflate
	for i := range jobs {
		jobs[i] = fanJob{msg: msg, z: z, ids: ids, skip: skip}
	}
	return n, h.enqueue(jobs)
}

// fanoutAll sends msg to every connected client not in skip: at most
// FanoutInline of them itself, more through the lanes. It returns how many
// clients accepted the message or were handed it.
func (h *Hub) FanoutAll(msg abi.Message, skip map[string]struct{}) (int, error) {
	jobs := make([]fanJob, len(h.lanes))
	total := 0
	for i := range h.shards {
		s := &h.shards[i]
		j := &jobs[i%len(h.lanes)]
		s.mu.RLock()
		for _, c := range s.conns {
			if _, ok := skip[c.id]; !ok {
				j.conns = append(j.conns, c)
				total++
			}
		}
		s.mu.RUnlock()
	}
	z := NewDeflated() // compressed once, if any recipient takes deflate
	if total > FanoutInline {
		for i := range jobs {
			jobs[i].msg, jobs[i].z = msg, z
		}
		return total, h.enqueue(jobs)
	}
	n := 0
	for i := range jobs {
		for _, c := range jobs[i].conns {
			if h.sendOrdered(c, msg, z, false, false) == nil {
				n++
			}
		}
	}
	return n, nil
}
