package registry

import (
	"context"
	"fmt"
	"slices"

	"github.com/wasmgate/wasmgate/abi"
)

// ClientGrouper is implemented by a Registry that can list one client's
// groups without scanning every group. ClosingStateOf uses it when present.
type ClientGrouper interface {
	// ClientGroups lists the groups the client is in, in no particular
	// order; abi.ErrnoNotFound for an unknown client.
	ClientGroups(ctx context.Context, id string) ([]string, error)
}

// ClosingStateOf reads what on_close's closing_state answers with — the
// client's uid, session and groups (groups sorted) — through r. Call it
// before RemoveClient. It works with any Registry: one without
// ClientGroups is scanned group by group. A failure is carried in the
// state's Err (closing_state returns its Errno), never dropped silently.
func ClosingStateOf(ctx context.Context, r Registry, id string) *abi.ClosingState {
	st := &abi.ClosingState{}
	var err error
	if st.Uid, err = r.UidOf(ctx, id); err == nil {
		if st.Session, err = r.Session(ctx, id); err == nil {
			st.Groups, err = clientGroups(ctx, r, id)
		}
	}
	if err != nil {
		return &abi.ClosingState{Err: fmt.Errorf("closing state of client %s: %w", id, err)}
	}
	st.Session = slices.Clone(st.Session) // the registry's bytes must not be kept
	slices.Sort(st.Groups)
	return st
}

func clientGroups(ctx context.Context, r Registry, id string) ([]string, error) {
	if g, ok := r.(ClientGrouper); ok {
		return g.ClientGroups(ctx, id)
	}
	all, err := r.GroupIDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range all {
		members, err := r.GroupClients(ctx, g)
		if err != nil {
			return nil, err
		}
		if slices.Contains(members, id) {
			out = append(out, g)
		}
	}
	return out, nil
}

// ClientGroups implements ClientGrouper.
func (r *Local) ClientGroups(_ context.Context, id string) ([]string, error) {
	var out []string
	err := r.view(id, func(c *regClient) {
		out = make([]string, 0, len(c.groups))
		for g := range c.groups {
			out = append(out, g)
		}
	})
	return out, err
}
