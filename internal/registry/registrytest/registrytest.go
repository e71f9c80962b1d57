// Package registrytest is the conformance suite of registry.Registry: every
// implementation (registry.Local, the Redis one in redisreg) runs the same
// tests, so that a handler sees the same answers, errnos and session bytes
// on one node and in a cluster.
package registrytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/registry"
)

// Node is the node id of the client ids the suite uses (ID): a registry
// that accepts only its own node's clients must be node Node.
const Node = 1

// ID returns the i-th client id of node Node, a well-formed client id (20 hex
// digits, the first 8 the node id).
func ID(i int) string { return fmt.Sprintf("%08x%012x", Node, i) }

// NewFunc returns an empty registry enforcing limits; it is closed when t
// ends.
type NewFunc func(t *testing.T, limits registry.Limits) registry.Registry

// Option adjusts Run.
type Option func(*config)

type config struct {
	peer func(t *testing.T, r registry.Registry) registry.Registry
}

// WithPeer gives Run a second instance sharing r's state (another node on
// the same Redis), for the tests of concurrent calls from two instances.
// Without it the peer is r itself (registry.Local has nothing to share).
func WithPeer(peer func(t *testing.T, r registry.Registry) registry.Registry) Option {
	return func(c *config) { c.peer = peer }
}

// Run runs the suite, each test on a fresh registry from newRegistry.
func Run(t *testing.T, newRegistry NewFunc, opts ...Option) {
	c := &config{peer: func(_ *testing.T, r registry.Registry) registry.Registry { return r }}
	for _, o := range opts {
		o(c)
	}
	s := &suite{newReg: newRegistry, peer: c.peer}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Clients", s.testClients},
		{"Uids", s.testUids},
		{"Groups", s.testGroups},
		{"RemoveClientCleansEverything", s.testRemoveCleans},
		{"Errors", s.testErrors},
		{"UnknownClients", s.testUnknownClients},
		{"Session", s.testSession},
		{"SessionRejectsNonObject", s.testSessionRejects},
		{"PerClientLimits", s.testLimits},
		{"NoLimits", s.testNoLimits},
		{"ConcurrentJoinGroupLimit", s.testConcurrentJoinLimit},
		{"ConcurrentUpdateSession", s.testConcurrentUpdateSession},
		{"ConcurrentRemoveLeavesNoStaleIDs", s.testConcurrentRemove},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

type suite struct {
	newReg NewFunc
	peer   func(t *testing.T, r registry.Registry) registry.Registry
}

// fresh returns an empty registry holding clients ID(0)..ID(n-1).
func (s *suite) fresh(t *testing.T, limits registry.Limits, n int) registry.Registry {
	t.Helper()
	r := s.newReg(t, limits)
	for i := range n {
		noErr(t, r.AddClient(t.Context(), ID(i)))
	}
	return r
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantSet compares lists as sets of distinct elements (order is free).
func wantSet(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s = %v, want %v", what, g, w)
	}
}

func wantErrno(t *testing.T, what string, err error, want abi.Errno) {
	t.Helper()
	if got := abi.ErrnoOf(err); got != want || (want != abi.ErrnoSuccess && !errors.Is(err, want)) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func (s *suite) testClients(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{}, 3)
	a, b, c := ID(0), ID(1), ID(2)
	wantSet(t, "ClientIDs", must[[]string](t)(r.ClientIDs(ctx)), a, b, c)
	if n := must[int](t)(r.ClientCount(ctx)); n != 3 {
		t.Errorf("ClientCount = %d, want 3", n)
	}
	wantErrno(t, "AddClient twice", r.AddClient(ctx, a), abi.ErrnoInvalid)
	if !must[bool](t)(r.HasClient(ctx, b)) {
		t.Error("HasClient(b) = false")
	}
	if !must[bool](t)(r.RemoveClient(ctx, b)) {
		t.Error("RemoveClient(b) = false")
	}
	if must[bool](t)(r.RemoveClient(ctx, b)) {
		t.Error("second RemoveClient(b) = true")
	}
	if must[bool](t)(r.HasClient(ctx, b)) {
		t.Error("HasClient(removed) = true")
	}
	wantSet(t, "ClientIDs", must[[]string](t)(r.ClientIDs(ctx)), a, c)
	if n := must[int](t)(r.ClientCount(ctx)); n != 2 {
		t.Errorf("ClientCount = %d, want 2", n)
	}
	noErr(t, r.AddClient(ctx, b)) // an id can come back
	wantSet(t, "ClientIDs", must[[]string](t)(r.ClientIDs(ctx)), a, b, c)
}

func (s *suite) testUids(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{}, 3)
	a, b, c := ID(0), ID(1), ID(2)
	strs, num, str := must[[]string](t), must[int](t), must[string](t)
	if u := str(r.UidOf(ctx, a)); u != "" {
		t.Errorf("UidOf(unbound) = %q", u)
	}
	noErr(t, r.BindUid(ctx, a, "u1"))
	noErr(t, r.BindUid(ctx, a, "u1")) // no-op
	noErr(t, r.BindUid(ctx, b, "u1"))
	noErr(t, r.BindUid(ctx, c, "u2"))
	wantSet(t, "ClientsByUid(u1)", strs(r.ClientsByUid(ctx, "u1")), a, b)
	wantSet(t, "ClientsByUid(u2)", strs(r.ClientsByUid(ctx, "u2")), c)
	wantSet(t, "ClientsByUid(none)", strs(r.ClientsByUid(ctx, "none")))
	wantSet(t, "Uids", strs(r.Uids(ctx)), "u1", "u2")
	if n := num(r.UidCount(ctx)); n != 2 {
		t.Errorf("UidCount = %d, want 2", n)
	}
	noErr(t, r.BindUid(ctx, a, "u2")) // replaces u1
	if u := str(r.UidOf(ctx, a)); u != "u2" {
		t.Errorf("UidOf(a) = %q, want u2", u)
	}
	wantSet(t, "ClientsByUid(u1) after rebind", strs(r.ClientsByUid(ctx, "u1")), b)
	wantSet(t, "ClientsByUid(u2) after rebind", strs(r.ClientsByUid(ctx, "u2")), a, c)
	noErr(t, r.UnbindUid(ctx, b, "u2")) // not bound to u2: no-op
	if u := str(r.UidOf(ctx, b)); u != "u1" {
		t.Errorf("UidOf(b) after unbinding another uid = %q, want u1", u)
	}
	noErr(t, r.UnbindUid(ctx, b, "u1"))
	if u := str(r.UidOf(ctx, b)); u != "" {
		t.Errorf("UidOf(b) after unbind = %q", u)
	}
	wantSet(t, "Uids after unbind", strs(r.Uids(ctx)), "u2")
	if n := num(r.UidCount(ctx)); n != 1 {
		t.Errorf("UidCount = %d, want 1", n)
	}
	wantSet(t, "ClientsByUid(u1) after unbind", strs(r.ClientsByUid(ctx, "u1")))
	noErr(t, r.BindUid(ctx, b, "uid with spaces: and {braces}"))
	wantSet(t, "ClientsByUid(odd uid)", strs(r.ClientsByUid(ctx, "uid with spaces: and {braces}")), b)
}

func (s *suite) testGroups(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{}, 4)
	a, b, c, d := ID(0), ID(1), ID(2), ID(3)
	strs, num := must[[]string](t), must[int](t)
	noErr(t, r.JoinGroup(ctx, a, "g1"))
	noErr(t, r.JoinGroup(ctx, a, "g1")) // no-op
	noErr(t, r.JoinGroup(ctx, b, "g1"))
	noErr(t, r.JoinGroup(ctx, c, "g2"))
	noErr(t, r.JoinGroup(ctx, a, "g2"))
	wantSet(t, "GroupClients(g1)", strs(r.GroupClients(ctx, "g1")), a, b)
	wantSet(t, "GroupClients(g2)", strs(r.GroupClients(ctx, "g2")), a, c)
	wantSet(t, "GroupClients(none)", strs(r.GroupClients(ctx, "none")))
	if n := num(r.GroupClientCount(ctx, "g1")); n != 2 {
		t.Errorf("GroupClientCount(g1) = %d, want 2", n)
	}
	if n := num(r.GroupClientCount(ctx, "none")); n != 0 {
		t.Errorf("GroupClientCount(none) = %d", n)
	}
	wantSet(t, "GroupIDs", strs(r.GroupIDs(ctx)), "g1", "g2")

	noErr(t, r.LeaveGroup(ctx, b, "g2")) // not a member: no-op
	noErr(t, r.LeaveGroup(ctx, b, "g1"))
	wantSet(t, "GroupClients(g1) after leave", strs(r.GroupClients(ctx, "g1")), a)
	noErr(t, r.LeaveGroup(ctx, a, "g1"))
	wantSet(t, "GroupIDs after the last member left", strs(r.GroupIDs(ctx)), "g2")

	noErr(t, r.JoinGroup(ctx, b, "g3"))
	noErr(t, r.Ungroup(ctx, "g2"))
	noErr(t, r.Ungroup(ctx, "none"))
	wantSet(t, "GroupClients(g2) after ungroup", strs(r.GroupClients(ctx, "g2")))
	wantSet(t, "GroupIDs after ungroup", strs(r.GroupIDs(ctx)), "g3")
	noErr(t, r.JoinGroup(ctx, a, "g2")) // rejoin after ungroup
	wantSet(t, "GroupClients(g2) after rejoin", strs(r.GroupClients(ctx, "g2")), a)

	// GroupUids: distinct, skip unbound members, follow rebinding.
	noErr(t, r.BindUid(ctx, a, "u1"))
	noErr(t, r.BindUid(ctx, b, "u1"))
	noErr(t, r.BindUid(ctx, c, "u2"))
	for _, id := range []string{a, b, c, d} {
		noErr(t, r.JoinGroup(ctx, id, "gu"))
	}
	wantSet(t, "GroupUids(gu)", strs(r.GroupUids(ctx, "gu")), "u1", "u2")
	wantSet(t, "GroupUids(none)", strs(r.GroupUids(ctx, "none")))
	noErr(t, r.BindUid(ctx, a, "u3"))
	noErr(t, r.UnbindUid(ctx, c, "u2"))
	wantSet(t, "GroupUids(gu) after rebinding", strs(r.GroupUids(ctx, "gu")), "u1", "u3")
	noErr(t, r.JoinGroup(ctx, a, "group with spaces: and {braces}"))
	wantSet(t, "GroupClients(odd name)", strs(r.GroupClients(ctx, "group with spaces: and {braces}")), a)
}

func (s *suite) testRemoveCleans(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{}, 2)
	a, b := ID(0), ID(1)
	strs, num := must[[]string](t), must[int](t)
	noErr(t, r.BindUid(ctx, a, "u1"))
	noErr(t, r.BindUid(ctx, b, "u2"))
	noErr(t, r.JoinGroup(ctx, a, "g1"))
	noErr(t, r.JoinGroup(ctx, a, "g2"))
	noErr(t, r.JoinGroup(ctx, b, "g2"))
	noErr(t, r.SetSession(ctx, a, []byte(`{"k":"v"}`)))
	if !must[bool](t)(r.RemoveClient(ctx, a)) {
		t.Fatal("RemoveClient(a) = false")
	}
	wantSet(t, "ClientIDs", strs(r.ClientIDs(ctx)), b)
	wantSet(t, "ClientsByUid(u1)", strs(r.ClientsByUid(ctx, "u1")))
	wantSet(t, "Uids", strs(r.Uids(ctx)), "u2")
	wantSet(t, "GroupClients(g2)", strs(r.GroupClients(ctx, "g2")), b)
	wantSet(t, "GroupIDs", strs(r.GroupIDs(ctx)), "g2")
	wantSet(t, "GroupUids(g1)", strs(r.GroupUids(ctx, "g1")))
	if n := num(r.ClientCount(ctx)) + num(r.UidCount(ctx)); n != 2 {
		t.Errorf("ClientCount+UidCount = %d, want 2", n)
	}
	_, err := r.Session(ctx, a)
	wantErrno(t, "Session(removed)", err, abi.ErrnoNotFound)
	noErr(t, r.AddClient(ctx, a))
	s.wantSession(t, r, a, `{}`)
	if uid := must[string](t)(r.UidOf(ctx, a)); uid != "" {
		t.Errorf("re-added client has uid %q", uid)
	}
	noErr(t, r.JoinGroup(ctx, a, "g3"))
	wantSet(t, "GroupIDs after re-adding", strs(r.GroupIDs(ctx)), "g2", "g3")
}

func (s *suite) testErrors(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{}, 1)
	a, x := ID(0), ID(99)
	obj := []byte(`{}`)
	for _, tt := range []struct {
		name string
		call func() error
		want abi.Errno
	}{
		{"AddClient empty", func() error { return r.AddClient(ctx, "") }, abi.ErrnoInvalid},
		{"AddClient dup", func() error { return r.AddClient(ctx, a) }, abi.ErrnoInvalid},
		{"RemoveClient empty", func() error { _, err := r.RemoveClient(ctx, ""); return err }, abi.ErrnoInvalid},
		{"HasClient empty", func() error { _, err := r.HasClient(ctx, ""); return err }, abi.ErrnoInvalid},
		{"BindUid empty uid", func() error { return r.BindUid(ctx, a, "") }, abi.ErrnoInvalid},
		{"BindUid empty id", func() error { return r.BindUid(ctx, "", "u") }, abi.ErrnoInvalid},
		{"BindUid unknown", func() error { return r.BindUid(ctx, x, "u") }, abi.ErrnoNotFound},
		{"UnbindUid empty uid", func() error { return r.UnbindUid(ctx, a, "") }, abi.ErrnoInvalid},
		{"UnbindUid unknown", func() error { return r.UnbindUid(ctx, x, "u") }, abi.ErrnoNotFound},
		{"ClientsByUid empty", func() error { _, err := r.ClientsByUid(ctx, ""); return err }, abi.ErrnoInvalid},
		{"UidOf empty", func() error { _, err := r.UidOf(ctx, ""); return err }, abi.ErrnoInvalid},
		{"UidOf unknown", func() error { _, err := r.UidOf(ctx, x); return err }, abi.ErrnoNotFound},
		{"JoinGroup empty group", func() error { return r.JoinGroup(ctx, a, "") }, abi.ErrnoInvalid},
		{"JoinGroup empty id", func() error { return r.JoinGroup(ctx, "", "g") }, abi.ErrnoInvalid},
		{"JoinGroup unknown", func() error { return r.JoinGroup(ctx, x, "g") }, abi.ErrnoNotFound},
		{"LeaveGroup empty group", func() error { return r.LeaveGroup(ctx, a, "") }, abi.ErrnoInvalid},
		{"LeaveGroup unknown", func() error { return r.LeaveGroup(ctx, x, "g") }, abi.ErrnoNotFound},
		{"Ungroup empty", func() error { return r.Ungroup(ctx, "") }, abi.ErrnoInvalid},
		{"GroupClients empty", func() error { _, err := r.GroupClients(ctx, ""); return err }, abi.ErrnoInvalid},
		{"GroupClientCount empty", func() error { _, err := r.GroupClientCount(ctx, ""); return err }, abi.ErrnoInvalid},
		{"GroupUids empty", func() error { _, err := r.GroupUids(ctx, ""); return err }, abi.ErrnoInvalid},
		{"SetSession unknown", func() error { return r.SetSession(ctx, x, obj) }, abi.ErrnoNotFound},
		{"SetSession empty id", func() error { return r.SetSession(ctx, "", obj) }, abi.ErrnoInvalid},
		{"UpdateSession unknown", func() error { return r.UpdateSession(ctx, x, obj) }, abi.ErrnoNotFound},
		{"UpdateSession empty id", func() error { return r.UpdateSession(ctx, "", obj) }, abi.ErrnoInvalid},
		{"Session unknown", func() error { _, err := r.Session(ctx, x); return err }, abi.ErrnoNotFound},
		{"Session empty id", func() error { _, err := r.Session(ctx, ""); return err }, abi.ErrnoInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) { wantErrno(t, tt.name, tt.call(), tt.want) })
	}
	// Errors reach users (push replies, guest logs): they name the
	// problem, not a Go package.
	for _, err := range []error{r.BindUid(ctx, x, "u"), r.BindUid(ctx, a, ""), r.JoinGroup(ctx, x, "g")} {
		if strings.Contains(err.Error(), "registry") {
			t.Errorf("error %q names the package", err)
		}
	}
}

// testUnknownClients: ids that are not connected, well-formed or not, are
// unknown, not errors of another kind, and leave no trace.
func (s *suite) testUnknownClients(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{}, 1)
	for _, id := range []string{ID(99), "nope", "0000000100000000000g", "x:groups", strings.Repeat("f", 20)} {
		if ok := must[bool](t)(r.HasClient(ctx, id)); ok {
			t.Errorf("HasClient(%q) = true", id)
		}
		if ok := must[bool](t)(r.RemoveClient(ctx, id)); ok {
			t.Errorf("RemoveClient(%q) = true", id)
		}
		wantErrno(t, "JoinGroup "+id, r.JoinGroup(ctx, id, "g"), abi.ErrnoNotFound)
		wantErrno(t, "BindUid "+id, r.BindUid(ctx, id, "u"), abi.ErrnoNotFound)
		wantErrno(t, "UpdateSession "+id, r.UpdateSession(ctx, id, []byte(`{"a":1}`)), abi.ErrnoNotFound)
		_, err := r.Session(ctx, id)
		wantErrno(t, "Session "+id, err, abi.ErrnoNotFound)
	}
	wantSet(t, "GroupIDs", must[[]string](t)(r.GroupIDs(ctx)))
	wantSet(t, "Uids", must[[]string](t)(r.Uids(ctx)))
	wantSet(t, "ClientIDs", must[[]string](t)(r.ClientIDs(ctx)), ID(0))
}

func (s *suite) wantSession(t *testing.T, r registry.Registry, id, want string) {
	t.Helper()
	if got := string(must[[]byte](t)(r.Session(t.Context(), id))); got != want {
		t.Errorf("Session(%s) = %s, want %s", id, got, want)
	}
}

func (s *suite) testSession(t *testing.T) {
	for _, tt := range []struct {
		name string
		ops  []string // "S" + JSON: SetSession; "U" + JSON: UpdateSession
		want string
	}{
		{name: "empty", want: `{}`},
		{name: "set", ops: []string{`S{"b":1,"a":"x"}`}, want: `{"a":"x","b":1}`},
		{name: "set replaces", ops: []string{`S{"old":{"x":1}}`, `S{"a":1}`}, want: `{"a":1}`},
		{name: "set empty clears", ops: []string{`S{"a":1}`, `S{}`}, want: `{}`},
		{name: "update without set", ops: []string{`U{"a":1}`}, want: `{"a":1}`},
		{name: "empty update", ops: []string{`S{"a":1}`, `U{}`}, want: `{"a":1}`},
		{
			name: "update merges nested",
			ops: []string{
				`S{"user":{"name":"ann","roles":["a","b"],"prefs":{"lang":"en","tz":"UTC"}},"n":1}`,
				`U{"user":{"roles":["c"],"prefs":{"lang":"fr"}},"m":2}`,
			},
			want: `{"m":2,"n":1,"user":{"name":"ann","prefs":{"lang":"fr","tz":"UTC"},"roles":["c"]}}`,
		},
		{
			name: "update replaces object by scalar and null",
			ops:  []string{`S{"a":{"x":1},"b":{"y":2},"c":3}`, `U{"a":5}`, `U{"b":null}`, `U{"c":{"z":[]}}`},
			want: `{"a":5,"b":null,"c":{"z":[]}}`,
		},
		{name: "empty object patch keeps object", ops: []string{`S{"o":{"a":1}}`, `U{"o":{}}`}, want: `{"o":{"a":1}}`},
		{name: "array replaced whole", ops: []string{`S{"l":[1,2,3],"e":{}}`, `U{"l":[9]}`}, want: `{"e":{},"l":[9]}`},
		{
			name: "numbers and html kept exactly",
			ops:  []string{`S{"big":12345678901234567890123,"f":1.10,"e":1e400,"h":"<a&b>"}`, `U{"u":"\u00e9\ud83d\ude00"}`},
			want: `{"big":12345678901234567890123,"e":1e400,"f":1.10,"h":"<a&b>","u":"é😀"}`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.fresh(t, registry.Limits{}, 1)
			for _, op := range tt.ops {
				var err error
				if op[0] == 'S' {
					err = r.SetSession(t.Context(), ID(0), []byte(op[1:]))
				} else {
					err = r.UpdateSession(t.Context(), ID(0), []byte(op[1:]))
				}
				noErr(t, err)
			}
			s.wantSession(t, r, ID(0), tt.want)
		})
	}
}

func (s *suite) testSessionRejects(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{}, 1)
	a := ID(0)
	noErr(t, r.SetSession(ctx, a, []byte(`{"keep":1}`)))
	for _, bad := range []string{``, ` `, `null`, `[]`, `[{"a":1}]`, `"s"`, `1`, `true`,
		`{`, `{"a":}`, `{}{}`, `{} x`, `{"a":1}]`, `{'a':1}`} {
		wantErrno(t, fmt.Sprintf("SetSession(%q)", bad), r.SetSession(ctx, a, []byte(bad)), abi.ErrnoInvalid)
		wantErrno(t, fmt.Sprintf("UpdateSession(%q)", bad), r.UpdateSession(ctx, a, []byte(bad)), abi.ErrnoInvalid)
	}
	s.wantSession(t, r, a, `{"keep":1}`)
	noErr(t, r.SetSession(ctx, a, []byte(" \n{\"a\":1}\n ")))
	s.wantSession(t, r, a, `{"a":1}`)
}

func (s *suite) testLimits(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{MaxSessionBytes: 64, MaxGroupsPerClient: 2, MaxNameBytes: 8}, 1)
	c := ID(0)
	for _, tc := range []struct {
		what string
		err  error
		want abi.Errno
	}{
		{"long uid", r.BindUid(ctx, c, "123456789"), abi.ErrnoTooLarge},
		{"uid at the limit", r.BindUid(ctx, c, "12345678"), abi.ErrnoSuccess},
		{"long group", r.JoinGroup(ctx, c, "123456789"), abi.ErrnoTooLarge},
		{"long session key", r.SetSession(ctx, c, []byte(`{"a":[{"123456789":1}]}`)), abi.ErrnoTooLarge},
		{"long session key in update", r.UpdateSession(ctx, c, []byte(`{"a":{"123456789":1}}`)), abi.ErrnoTooLarge},
		{"join 1", r.JoinGroup(ctx, c, "g1"), abi.ErrnoSuccess},
		{"join 2", r.JoinGroup(ctx, c, "g2"), abi.ErrnoSuccess},
		{"join 2 again", r.JoinGroup(ctx, c, "g2"), abi.ErrnoSuccess},
		{"join 3", r.JoinGroup(ctx, c, "g3"), abi.ErrnoLimit},
		{"session at the limit", r.SetSession(ctx, c, []byte(`{"a":"`+strings.Repeat("x", 56)+`"}`)), abi.ErrnoSuccess},
		{"update past the limit", r.UpdateSession(ctx, c, []byte(`{"b":1}`)), abi.ErrnoLimit},
		{"set past the limit", r.SetSession(ctx, c, []byte(`{"a":"`+strings.Repeat("x", 57)+`"}`)), abi.ErrnoLimit},
	} {
		wantErrno(t, tc.what, tc.err, tc.want)
	}
	wantSet(t, "GroupClients(g3)", must[[]string](t)(r.GroupClients(ctx, "g3")))
	wantSet(t, "GroupIDs", must[[]string](t)(r.GroupIDs(ctx)), "g1", "g2")
	if got := string(must[[]byte](t)(r.Session(ctx, c))); len(got) != 64 || !strings.HasPrefix(got, `{"a":"xx`) {
		t.Errorf("session after refused writes: %s", got)
	}
	noErr(t, r.LeaveGroup(ctx, c, "g1"))
	noErr(t, r.JoinGroup(ctx, c, "g3")) // a place freed
	wantSet(t, "GroupIDs", must[[]string](t)(r.GroupIDs(ctx)), "g2", "g3")
}

func (s *suite) testNoLimits(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{}, 1)
	c := ID(0)
	noErr(t, r.BindUid(ctx, c, strings.Repeat("u", 65000)))
	for i := range 300 {
		noErr(t, r.JoinGroup(ctx, c, strconv.Itoa(i)))
	}
	if n := len(must[[]string](t)(r.GroupIDs(ctx))); n != 300 {
		t.Errorf("%d groups, want 300", n)
	}
	noErr(t, r.SetSession(ctx, c, []byte(`{"a":"`+strings.Repeat("x", 100000)+`"}`)))
}

// testConcurrentJoinGroupLimit: joins of distinct groups for one client,
// racing from two instances, never pass max_groups_per_client.
func (s *suite) testConcurrentJoinLimit(t *testing.T) {
	ctx := t.Context()
	const max, workers, each = 3, 8, 5
	r := s.fresh(t, registry.Limits{MaxGroupsPerClient: max}, 1)
	regs := []registry.Registry{r, s.peer(t, r)}
	c := ID(0)
	var mu sync.Mutex
	joined := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				err := regs[w%2].JoinGroup(ctx, c, fmt.Sprintf("g%d_%d", w, i))
				switch abi.ErrnoOf(err) {
				case abi.ErrnoSuccess:
					mu.Lock()
					joined++
					mu.Unlock()
				case abi.ErrnoLimit:
				default:
					t.Errorf("JoinGroup: %v", err)
				}
			}
		})
	}
	wg.Wait()
	groups := must[[]string](t)(r.GroupIDs(ctx))
	if joined != max || len(groups) != max {
		t.Fatalf("%d joins succeeded, %d groups exist (%v): want exactly %d", joined, len(groups), groups, max)
	}
	for _, g := range groups {
		wantSet(t, "GroupClients("+g+")", must[[]string](t)(regs[1].GroupClients(ctx, g)), c)
	}
}

// testConcurrentUpdateSession: concurrent updates of one session from two
// instances all land.
func (s *suite) testConcurrentUpdateSession(t *testing.T) {
	ctx := t.Context()
	r := s.fresh(t, registry.Limits{}, 1)
	regs := []registry.Registry{r, s.peer(t, r)}
	c := ID(0)
	const writers, each = 6, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := regs[w%2].UpdateSession(ctx, c, fmt.Appendf(nil, `{"k%d_%d":%d,"n":{"w%d":%d}}`, w, i, i, w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var got map[string]any
	if err := json.Unmarshal(must[[]byte](t)(regs[1].Session(ctx, c)), &got); err != nil {
		t.Fatal(err)
	}
	nested, _ := got["n"].(map[string]any)
	if len(got) != writers*each+1 || len(nested) != writers {
		t.Fatalf("%d keys and %d nested, want %d and %d", len(got), len(nested), writers*each+1, writers)
	}
}

// testConcurrentRemove: clients removed while the other instance binds
// uids, joins groups and writes sessions leave no stale id anywhere.
func (s *suite) testConcurrentRemove(t *testing.T) {
	ctx := t.Context()
	const n = 40
	r := s.fresh(t, registry.Limits{}, n)
	peer := s.peer(t, r)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if _, err := r.RemoveClient(ctx, ID(i)); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Go(func() {
		for i := range n {
			for _, err := range []error{
				peer.BindUid(ctx, ID(i), "u"+strconv.Itoa(i%3)),
				peer.JoinGroup(ctx, ID(i), "g"+strconv.Itoa(i%4)),
				peer.JoinGroup(ctx, ID(i), "all"),
				peer.UpdateSession(ctx, ID(i), []byte(`{"a":1}`)),
			} {
				if e := abi.ErrnoOf(err); e != abi.ErrnoSuccess && e != abi.ErrnoNotFound {
					t.Error(err)
				}
			}
		}
	})
	wg.Wait()
	strs, num := must[[]string](t), must[int](t)
	wantSet(t, "ClientIDs", strs(peer.ClientIDs(ctx)))
	wantSet(t, "GroupIDs", strs(peer.GroupIDs(ctx)))
	wantSet(t, "Uids", strs(peer.Uids(ctx)))
	wantSet(t, "GroupClients(all)", strs(peer.GroupClients(ctx, "all")))
	if c := num(peer.ClientCount(ctx)) + num(peer.UidCount(ctx)) + num(peer.GroupClientCount(ctx, "all")); c != 0 {
		t.Errorf("counts sum to %d after removing everyone", c)
	}
	// Every id is reusable, with a clean state.
	noErr(t, r.AddClient(ctx, ID(0)))
	s.wantSession(t, peer, ID(0), `{}`)
}
