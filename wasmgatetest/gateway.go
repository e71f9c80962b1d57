package wasmgatetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/registry"
)

// Sent is one message the handler sent, to one client.
type Sent struct {
	// To is the recipient's client id.
	To string
	abi.Message
}

// String renders the send for failure messages: `to: "data"`, with
// "(binary)" for a binary frame.
func (s Sent) String() string {
	if s.Binary {
		return fmt.Sprintf("%s: %q (binary)", s.To, s.Data)
	}
	return fmt.Sprintf("%s: %q", s.To, s.Data)
}

// gateway is the in-memory abi.Host the handler runs against: the
// registry is the server's own (registry.Local, the same uid, group and
// session semantics and limits), and a send is recorded instead of
// written to a socket. Guests call it from every instance at once (timers
// and tasks run on their own goroutines): mu guards the records.
type gateway struct {
	reg     *registry.Local
	maxSize int

	mu      sync.Mutex
	sent    []Sent
	inbox   map[string][]abi.Message
	closing map[string]int // clients close_client closed, with the code: on_close is still due
	closed  map[string]int // clients whose on_close ran, with the close code (1000, 1001 for Client.Close)
}

func newGateway(maxSize int, limits registry.Limits) *gateway {
	return &gateway{
		reg: registry.NewLocalWithLimits(limits), maxSize: maxSize,
		inbox: map[string][]abi.Message{}, closing: map[string]int{}, closed: map[string]int{},
	}
}

// checkMessage is the server's check (server/gateway.go): what must never
// reach a socket.
func (g *gateway) checkMessage(msg abi.Message) error {
	if len(msg.Data) > g.maxSize {
		return fmt.Errorf("message of %d bytes exceeds max_message_size %d: %w", len(msg.Data), g.maxSize, abi.ErrnoTooLarge)
	}
	if !msg.Binary && !utf8.Valid(msg.Data) {
		return fmt.Errorf("text message is not valid UTF-8: %w", abi.ErrnoInvalid)
	}
	return nil
}

// deliver records msg for each id in ids (once each) not in exclude that
// is connected and not closing, and returns how many.
func (g *gateway) deliver(ctx context.Context, ids []string, exclude []string, msg abi.Message) (int, error) {
	if err := g.checkMessage(msg); err != nil {
		return 0, err
	}
	data := slices.Clone(msg.Data)
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[string]bool{}
	for _, id := range exclude {
		seen[id] = true
	}
	n := 0
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if ok, _ := g.reg.HasClient(ctx, id); !ok {
			continue
		}
		if _, closing := g.closing[id]; closing {
			continue
		}
		m := abi.Message{Data: data, Binary: msg.Binary}
		g.sent = append(g.sent, Sent{To: id, Message: m})
		g.inbox[id] = append(g.inbox[id], m)
		n++
	}
	return n, nil
}

func (g *gateway) SendToClient(ctx context.Context, id string, msg abi.Message) error {
	if err := g.checkMessage(msg); err != nil {
		return err
	}
	if ok, _ := g.reg.HasClient(ctx, id); !ok {
		return abi.ErrnoNotFound
	}
	_, err := g.deliver(ctx, []string{id}, nil, msg)
	return err
}

func (g *gateway) SendToAll(ctx context.Context, msg abi.Message, only []string, onlyGiven bool, exclude []string) (int, error) {
	if !onlyGiven {
		all, err := g.reg.ClientIDs(ctx)
		if err != nil {
			return 0, err
		}
		slices.Sort(all) // a stable order for Sent
		only = all
	}
	return g.deliver(ctx, only, exclude, msg)
}

func (g *gateway) CloseClient(ctx context.Context, id string, final *abi.Message, code int) error {
	if ok, _ := g.reg.HasClient(ctx, id); !ok {
		return abi.ErrnoNotFound
	}
	if final != nil {
		if _, err := g.deliver(ctx, []string{id}, nil, *final); err != nil {
			return err
		}
	}
	if code == 0 {
		code = 1000
	}
	g.mu.Lock()
	if _, ok := g.closing[id]; !ok {
		g.closing[id] = code
	}
	g.mu.Unlock()
	return nil
}

func (g *gateway) SendToUid(ctx context.Context, uids []string, msg abi.Message) (int, error) {
	var ids []string
	for _, uid := range uids {
		c, err := g.reg.ClientsByUid(ctx, uid)
		if err != nil {
			return 0, err
		}
		slices.Sort(c)
		ids = append(ids, c...)
	}
	return g.deliver(ctx, ids, nil, msg)
}

func (g *gateway) SendToGroup(ctx context.Context, groups []string, msg abi.Message, exclude []string) (int, error) {
	var ids []string
	for _, group := range groups {
		c, err := g.reg.GroupClients(ctx, group)
		if err != nil {
			return 0, err
		}
		slices.Sort(c)
		ids = append(ids, c...)
	}
	return g.deliver(ctx, ids, exclude, msg)
}

func (g *gateway) IsOnline(ctx context.Context, id string) (bool, error) {
	return g.reg.HasClient(ctx, id)
}

func (g *gateway) BindUid(ctx context.Context, id, uid string) error {
	return g.reg.BindUid(ctx, id, uid)
}

func (g *gateway) UnbindUid(ctx context.Context, id, uid string) error {
	return g.reg.UnbindUid(ctx, id, uid)
}

func (g *gateway) IsUidOnline(ctx context.Context, uid string) (bool, error) {
	ids, err := g.reg.ClientsByUid(ctx, uid)
	return len(ids) > 0, err
}

func (g *gateway) GetClientIdByUid(ctx context.Context, uid string) ([]string, error) {
	return g.reg.ClientsByUid(ctx, uid)
}

func (g *gateway) GetUidByClientId(ctx context.Context, id string) (string, error) {
	return g.reg.UidOf(ctx, id)
}

func (g *gateway) JoinGroup(ctx context.Context, id, group string) error {
	return g.reg.JoinGroup(ctx, id, group)
}

func (g *gateway) LeaveGroup(ctx context.Context, id, group string) error {
	return g.reg.LeaveGroup(ctx, id, group)
}

func (g *gateway) Ungroup(ctx context.Context, group string) error {
	return g.reg.Ungroup(ctx, group)
}

func (g *gateway) GetClientIdCountByGroup(ctx context.Context, group string) (int, error) {
	return g.reg.GroupClientCount(ctx, group)
}

func (g *gateway) GetClientIdListByGroup(ctx context.Context, group string) ([]string, error) {
	return g.reg.GroupClients(ctx, group)
}

func (g *gateway) GetUidListByGroup(ctx context.Context, group string) ([]string, error) {
	return g.reg.GroupUids(ctx, group)
}

func (g *gateway) GetUidCountByGroup(ctx context.Context, group string) (int, error) {
	u, err := g.reg.GroupUids(ctx, group)
	return len(u), err
}

func (g *gateway) GetAllClientIdCount(ctx context.Context) (int, error) {
	return g.reg.ClientCount(ctx)
}

func (g *gateway) GetAllClientIdList(ctx context.Context) ([]string, error) {
	return g.reg.ClientIDs(ctx)
}

func (g *gateway) GetAllUidList(ctx context.Context) ([]string, error) { return g.reg.Uids(ctx) }

func (g *gateway) GetAllUidCount(ctx context.Context) (int, error) { return g.reg.UidCount(ctx) }

func (g *gateway) GetAllGroupIdList(ctx context.Context) ([]string, error) {
	return g.reg.GroupIDs(ctx)
}

func (g *gateway) SetSession(ctx context.Context, id string, session []byte) error {
	return g.reg.SetSession(ctx, id, session)
}

func (g *gateway) UpdateSession(ctx context.Context, id string, patch []byte) error {
	return g.reg.UpdateSession(ctx, id, patch)
}

func (g *gateway) GetSession(ctx context.Context, id string) ([]byte, error) {
	return g.reg.Session(ctx, id)
}

var _ abi.Host = (*gateway)(nil)
