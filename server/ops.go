package server

import (
	"context"
	"sort"
	"time"

	"github.com/wasmgate/wasmgate/internal/push"
	"github.com/wasmgate/wasmgate/internal/transport"
)

// What the operations commands (`wasmgate status`, `connections`, `stop`)
// ask of a running server through the admin listener: its version and
// start time, its connections with their traffic, and a graceful stop.
// Nothing here runs per message: the per-connection counters are the
// transport's (transport.Info).

// ops is the server's operational identity and its stop request.
type ops struct {
	version string
	started time.Time
	// stop carries a stop request's timeout to whoever watches it
	// (StopRequested); watched says someone does.
	stop    chan time.Duration
	watched bool
}

// WithVersion names the running build in GET /status and /metrics
// (wasmgate_build_info).
func WithVersion(v string) Option {
	return func(o *options) { o.version = v }
}

// ConnFilter selects the clients Connections lists.
type ConnFilter = push.ConnFilter

// ConnInfo is one client as Connections lists it.
type ConnInfo = push.ConnInfo

// StopRequested returns the channel on which a stop asked through the
// admin listener (POST /stop, `wasmgate stop`) delivers its timeout: the
// caller then shuts the server down (Shutdown) within it. Until something
// has called StopRequested, POST /stop answers that the process does not
// stop on request. Call it before Start.
func (s *Server) StopRequested() <-chan time.Duration {
	s.ops.watched = true
	return s.ops.stop
}

func (n pushNode) Stop(timeout time.Duration) bool {
	if !n.s.ops.watched {
		return false
	}
	select {
	case n.s.ops.stop <- timeout:
	default: // a stop is already under way
	}
	return true
}

func (n pushNode) Connections(ctx context.Context, f ConnFilter) ([]ConnInfo, error) {
	return n.s.Connections(ctx, f)
}

// Connections lists this node's clients that pass f, oldest first, with
// their uid, groups and traffic. It reads the registry once per group
// (groups are stored by group, not by client): a call for the admin, not
// for a hot path.
func (s *Server) Connections(ctx context.Context, f ConnFilter) ([]ConnInfo, error) {
	reg := s.gw.local
	var conns []*transport.Conn
	switch {
	case f.UID != "":
		ids, err := reg.ClientsByUid(ctx, f.UID)
		if err != nil {
			return nil, err
		}
		conns = s.connsOf(ids)
	case f.Group != "":
		ids, err := reg.GroupClients(ctx, f.Group)
		if err != nil {
			return nil, err
		}
		conns = s.connsOf(ids)
	default:
		s.hub.Each(func(c *transport.Conn) { conns = append(conns, c) })
	}
	groups, err := s.groupsByClient(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ConnInfo, 0, len(conns))
	for _, c := range conns {
		if f.Module != "" && c.Module() != f.Module {
			continue
		}
		in := c.Info()
		in.Groups = groups[in.ID]
		if f.Group != "" && !contains(in.Groups, f.Group) { // left meanwhile
			continue
		}
		uid, err := reg.UidOf(ctx, in.ID)
		if err != nil {
			continue // gone meanwhile
		}
		if f.UID != "" && uid != f.UID {
			continue
		}
		in.UID = uid
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (s *Server) connsOf(ids []string) []*transport.Conn {
	out := make([]*transport.Conn, 0, len(ids))
	for _, id := range ids {
		if c := s.hub.Get(id); c != nil {
			out = append(out, c)
		}
	}
	return out
}

// groupsByClient maps each of this node's clients to its groups, sorted.
func (s *Server) groupsByClient(ctx context.Context) (map[string][]string, error) {
	reg := s.gw.local
	names, err := reg.GroupIDs(ctx)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := map[string][]string{}
	for _, g := range names {
		ids, err := reg.GroupClients(ctx, g)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			out[id] = append(out[id], g)
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// nodeCounts returns the uids bound and the groups with a member among
// this node's clients (0 if the registry cannot tell right now).
func (s *Server) nodeCounts() (uids, groups int) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	uids, _ = s.gw.local.UidCount(ctx)
	names, _ := s.gw.local.GroupIDs(ctx)
	return uids, len(names)
}
