package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wasmgate/wasmgate/abi"
)

// regStep is one registry call in a test scenario.
type regStep func(ctx context.Context, r *Local) error

func stepAdd(ids ...string) regStep {
	return func(ctx context.Context, r *Local) error {
		for _, id := range ids {
			if err := r.AddClient(ctx, id); err != nil {
				return err
			}
		}
		return nil
	}
}

func stepRemove(id string) regStep {
	return func(ctx context.Context, r *Local) error {
		_, err := r.RemoveClient(ctx, id)
		return err
	}
}

func stepBind(id, uid string) regStep {
	return func(ctx context.Context, r *Local) error { return r.BindUid(ctx, id, uid) }
}

func stepUnbind(id, uid string) regStep {
	return func(ctx context.Context, r *Local) error { return r.UnbindUid(ctx, id, uid) }
}

func stepJoin(id, group string) regStep {
	return func(ctx context.Context, r *Local) error { return r.JoinGroup(ctx, id, group) }
}

func stepLeave(id, group string) regStep {
	return func(ctx context.Context, r *Local) error { return r.LeaveGroup(ctx, id, group) }
}

func stepUngroup(group string) regStep {
	return func(ctx context.Context, r *Local) error { return r.Ungroup(ctx, group) }
}

// runRegSteps builds a registry and applies steps, failing on any error.
func runRegSteps(t *testing.T, steps []regStep) *Local {
	t.Helper()
	r := NewLocal()
	for i, step := range steps {
		if err := step(t.Context(), r); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return r
}

// regMust returns v, panicking (which fails the test) if err is not nil. It
// takes no *testing.T so that it can wrap a two-result call directly.
func regMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// regWantList compares as sets: ClientsByUid and GroupClients are unordered.
func regWantList(t *testing.T, what string, got, want []string) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestLocalRegistry_Clients(t *testing.T) {
	ctx := t.Context()
	r := runRegSteps(t, []regStep{stepAdd("c", "a", "b")})
	regWantList(t, "ClientIDs", regMust(r.ClientIDs(ctx)), []string{"a", "b", "c"})
	if n := regMust(r.ClientCount(ctx)); n != 3 {
		t.Errorf("ClientCount = %d, want 3", n)
	}
	if !regMust(r.HasClient(ctx, "a")) || regMust(r.HasClient(ctx, "zz")) {
		t.Error("HasClient: want a online, zz offline")
	}
	if err := r.AddClient(ctx, "a"); !errors.Is(err, abi.ErrnoInvalid) {
		t.Errorf("AddClient(dup) = %v, want invalid", err)
	}
	if !regMust(r.RemoveClient(ctx, "a")) || regMust(r.RemoveClient(ctx, "a")) {
		t.Error("RemoveClient: want true then false")
	}
	regWantList(t, "ClientIDs", regMust(r.ClientIDs(ctx)), []string{"b", "c"})
}

func TestLocalRegistry_Uids(t *testing.T) {
	tests := []struct {
		name    string
		steps   []regStep
		byUid   map[string][]string // ClientsByUid
		uidOf   map[string]string   // UidOf
		allUids []string            // Uids
	}{
		{
			name:    "uid with two clients",
			steps:   []regStep{stepAdd("a", "b", "c"), stepBind("a", "u1"), stepBind("b", "u1")},
			byUid:   map[string][]string{"u1": {"a", "b"}, "u2": {}},
			uidOf:   map[string]string{"a": "u1", "b": "u1", "c": ""},
			allUids: []string{"u1"},
		},
		{
			name:    "rebind moves the client to the new uid",
			steps:   []regStep{stepAdd("a", "b"), stepBind("a", "u1"), stepBind("b", "u1"), stepBind("a", "u2")},
			byUid:   map[string][]string{"u1": {"b"}, "u2": {"a"}},
			uidOf:   map[string]string{"a": "u2", "b": "u1"},
			allUids: []string{"u1", "u2"},
		},
		{
			name:    "rebinding the only client drops the old uid",
			steps:   []regStep{stepAdd("a"), stepBind("a", "u1"), stepBind("a", "u2")},
			byUid:   map[string][]string{"u1": {}, "u2": {"a"}},
			allUids: []string{"u2"},
		},
		{
			name:    "binding the same uid twice",
			steps:   []regStep{stepAdd("a"), stepBind("a", "u1"), stepBind("a", "u1")},
			byUid:   map[string][]string{"u1": {"a"}},
			allUids: []string{"u1"},
		},
		{
			name:    "unbind with a different uid is a no-op",
			steps:   []regStep{stepAdd("a"), stepBind("a", "u1"), stepUnbind("a", "u2")},
			byUid:   map[string][]string{"u1": {"a"}, "u2": {}},
			uidOf:   map[string]string{"a": "u1"},
			allUids: []string{"u1"},
		},
		{
			name:    "unbind",
			steps:   []regStep{stepAdd("a", "b"), stepBind("a", "u1"), stepBind("b", "u1"), stepUnbind("a", "u1")},
			byUid:   map[string][]string{"u1": {"b"}},
			uidOf:   map[string]string{"a": "", "b": "u1"},
			allUids: []string{"u1"},
		},
		{
			name:    "unbind an unbound client",
			steps:   []regStep{stepAdd("a"), stepUnbind("a", "u1")},
			uidOf:   map[string]string{"a": ""},
			allUids: []string{},
		},
		{
			name:    "remove the last client drops the uid",
			steps:   []regStep{stepAdd("a", "b"), stepBind("a", "u1"), stepBind("b", "u2"), stepRemove("a")},
			byUid:   map[string][]string{"u1": {}, "u2": {"b"}},
			allUids: []string{"u2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			r := runRegSteps(t, tt.steps)
			for uid, want := range tt.byUid {
				regWantList(t, "ClientsByUid("+uid+")", regMust(r.ClientsByUid(ctx, uid)), want)
			}
			for id, want := range tt.uidOf {
				if got := regMust(r.UidOf(ctx, id)); got != want {
					t.Errorf("UidOf(%s) = %q, want %q", id, got, want)
				}
			}
			regWantList(t, "Uids", regMust(r.Uids(ctx)), tt.allUids)
			if n := regMust(r.UidCount(ctx)); n != len(tt.allUids) {
				t.Errorf("UidCount = %d, want %d", n, len(tt.allUids))
			}
		})
	}
}

func TestLocalRegistry_Groups(t *testing.T) {
	tests := []struct {
		name      string
		steps     []regStep
		members   map[string][]string // GroupClients and GroupClientCount
		groupUids map[string][]string // GroupUids
		groupIDs  []string            // GroupIDs
	}{
		{
			name:     "join",
			steps:    []regStep{stepAdd("a", "b"), stepJoin("a", "g1"), stepJoin("b", "g1"), stepJoin("a", "g2")},
			members:  map[string][]string{"g1": {"a", "b"}, "g2": {"a"}, "g3": {}},
			groupIDs: []string{"g1", "g2"},
		},
		{
			name:     "join twice",
			steps:    []regStep{stepAdd("a"), stepJoin("a", "g1"), stepJoin("a", "g1")},
			members:  map[string][]string{"g1": {"a"}},
			groupIDs: []string{"g1"},
		},
		{
			name:     "leave drops the empty group",
			steps:    []regStep{stepAdd("a", "b"), stepJoin("a", "g1"), stepJoin("b", "g2"), stepLeave("a", "g1")},
			members:  map[string][]string{"g1": {}, "g2": {"b"}},
			groupIDs: []string{"g2"},
		},
		{
			name:     "leave a group not joined",
			steps:    []regStep{stepAdd("a"), stepJoin("a", "g1"), stepLeave("a", "g2")},
			members:  map[string][]string{"g1": {"a"}},
			groupIDs: []string{"g1"},
		},
		{
			name: "ungroup",
			steps: []regStep{stepAdd("a", "b", "c"), stepJoin("a", "g1"), stepJoin("b", "g1"),
				stepJoin("c", "g2"), stepJoin("a", "g2"), stepUngroup("g1"), stepUngroup("nope")},
			members:  map[string][]string{"g1": {}, "g2": {"a", "c"}},
			groupIDs: []string{"g2"},
		},
		{
			name:     "rejoin after ungroup",
			steps:    []regStep{stepAdd("a"), stepJoin("a", "g1"), stepUngroup("g1"), stepJoin("a", "g1")},
			members:  map[string][]string{"g1": {"a"}},
			groupIDs: []string{"g1"},
		},
		{
			name: "group uids are distinct and skip unbound members",
			steps: []regStep{stepAdd("a", "b", "c", "d"), stepBind("a", "u1"), stepBind("b", "u1"),
				stepBind("c", "u2"), stepJoin("a", "g1"), stepJoin("b", "g1"), stepJoin("c", "g1"),
				stepJoin("d", "g1"), stepJoin("d", "g2")},
			groupUids: map[string][]string{"g1": {"u1", "u2"}, "g2": {}, "g3": {}},
			groupIDs:  []string{"g1", "g2"},
		},
		{
			name: "group uids follow rebinding",
			steps: []regStep{stepAdd("a", "b"), stepBind("a", "u1"), stepBind("b", "u1"),
				stepJoin("a", "g1"), stepJoin("b", "g1"), stepBind("a", "u2"), stepUnbind("b", "u1")},
			groupUids: map[string][]string{"g1": {"u2"}},
			groupIDs:  []string{"g1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			r := runRegSteps(t, tt.steps)
			for g, want := range tt.members {
				regWantList(t, "GroupClients("+g+")", regMust(r.GroupClients(ctx, g)), want)
				if n := regMust(r.GroupClientCount(ctx, g)); n != len(want) {
					t.Errorf("GroupClientCount(%s) = %d, want %d", g, n, len(want))
				}
			}
			for g, want := range tt.groupUids {
				regWantList(t, "GroupUids("+g+")", regMust(r.GroupUids(ctx, g)), want)
			}
			regWantList(t, "GroupIDs", regMust(r.GroupIDs(ctx)), tt.groupIDs)
		})
	}
}

func TestLocalRegistry_RemoveClientCleansEverything(t *testing.T) {
	ctx := t.Context()
	r := runRegSteps(t, []regStep{
		stepAdd("a", "b"), stepBind("a", "u1"), stepBind("b", "u2"),
		stepJoin("a", "g1"), stepJoin("a", "g2"), stepJoin("b", "g2"),
	})
	if err := r.SetSession(ctx, "a", []byte(`{"k":"v"}`)); err != nil {
		t.Fatal(err)
	}
	if !regMust(r.RemoveClient(ctx, "a")) {
		t.Fatal("RemoveClient(a) = false")
	}
	regWantList(t, "ClientIDs", regMust(r.ClientIDs(ctx)), []string{"b"})
	regWantList(t, "ClientsByUid(u1)", regMust(r.ClientsByUid(ctx, "u1")), nil)
	regWantList(t, "Uids", regMust(r.Uids(ctx)), []string{"u2"})
	regWantList(t, "GroupClients(g2)", regMust(r.GroupClients(ctx, "g2")), []string{"b"})
	regWantList(t, "GroupIDs", regMust(r.GroupIDs(ctx)), []string{"g2"})
	regWantList(t, "GroupUids(g1)", regMust(r.GroupUids(ctx, "g1")), nil)
	if n := regMust(r.ClientCount(ctx)) + regMust(r.UidCount(ctx)); n != 2 {
		t.Errorf("ClientCount+UidCount = %d, want 2", n)
	}
	if _, err := r.Session(ctx, "a"); !errors.Is(err, abi.ErrnoNotFound) {
		t.Errorf("Session(removed) err = %v, want not found", err)
	}
	if err := r.AddClient(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	regAssertSession(t, r, "a", `{}`)
	if uid := regMust(r.UidOf(ctx, "a")); uid != "" {
		t.Errorf("re-added client has uid %q", uid)
	}
	checkRegistryInvariants(t, r)
}

func TestLocalRegistry_Errors(t *testing.T) {
	ctx := t.Context()
	r := runRegSteps(t, []regStep{stepAdd("a")})
	obj := []byte(`{}`)
	tests := []struct {
		name string
		call func() error
		want abi.Errno
	}{
		{"AddClient empty", func() error { return r.AddClient(ctx, "") }, abi.ErrnoInvalid},
		{"AddClient dup", func() error { return r.AddClient(ctx, "a") }, abi.ErrnoInvalid},
		{"RemoveClient empty", func() error { _, err := r.RemoveClient(ctx, ""); return err }, abi.ErrnoInvalid},
		{"HasClient empty", func() error { _, err := r.HasClient(ctx, ""); return err }, abi.ErrnoInvalid},
		{"BindUid empty uid", func() error { return r.BindUid(ctx, "a", "") }, abi.ErrnoInvalid},
		{"BindUid empty id", func() error { return r.BindUid(ctx, "", "u") }, abi.ErrnoInvalid},
		{"BindUid unknown", func() error { return r.BindUid(ctx, "x", "u") }, abi.ErrnoNotFound},
		{"UnbindUid empty uid", func() error { return r.UnbindUid(ctx, "a", "") }, abi.ErrnoInvalid},
		{"UnbindUid unknown", func() error { return r.UnbindUid(ctx, "x", "u") }, abi.ErrnoNotFound},
		{"ClientsByUid empty", func() error { _, err := r.ClientsByUid(ctx, ""); return err }, abi.ErrnoInvalid},
		{"UidOf empty", func() error { _, err := r.UidOf(ctx, ""); return err }, abi.ErrnoInvalid},
		{"UidOf unknown", func() error { _, err := r.UidOf(ctx, "x"); return err }, abi.ErrnoNotFound},
		{"JoinGroup empty group", func() error { return r.JoinGroup(ctx, "a", "") }, abi.ErrnoInvalid},
		{"JoinGroup unknown", func() error { return r.JoinGroup(ctx, "x", "g") }, abi.ErrnoNotFound},
		{"LeaveGroup empty group", func() error { return r.LeaveGroup(ctx, "a", "") }, abi.ErrnoInvalid},
		{"LeaveGroup unknown", func() error { return r.LeaveGroup(ctx, "x", "g") }, abi.ErrnoNotFound},
		{"Ungroup empty", func() error { return r.Ungroup(ctx, "") }, abi.ErrnoInvalid},
		{"GroupClients empty", func() error { _, err := r.GroupClients(ctx, ""); return err }, abi.ErrnoInvalid},
		{"GroupClientCount empty", func() error { _, err := r.GroupClientCount(ctx, ""); return err }, abi.ErrnoInvalid},
		{"GroupUids empty", func() error { _, err := r.GroupUids(ctx, ""); return err }, abi.ErrnoInvalid},
		{"SetSession unknown", func() error { return r.SetSession(ctx, "x", obj) }, abi.ErrnoNotFound},
		{"SetSession empty id", func() error { return r.SetSession(ctx, "", obj) }, abi.ErrnoInvalid},
		{"UpdateSession unknown", func() error { return r.UpdateSession(ctx, "x", obj) }, abi.ErrnoNotFound},
		{"Session unknown", func() error { _, err := r.Session(ctx, "x"); return err }, abi.ErrnoNotFound},
		{"Session empty id", func() error { _, err := r.Session(ctx, ""); return err }, abi.ErrnoInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) || abi.ErrnoOf(err) != tt.want {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func regAssertSession(t *testing.T, r *Local, id, want string) {
	t.Helper()
	if got := string(regMust(r.Session(t.Context(), id))); got != want {
		t.Errorf("Session(%s) = %s, want %s", id, got, want)
	}
}

func regMustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalRegistry_SessionRejectsNonObject(t *testing.T) {
	ctx := t.Context()
	r := runRegSteps(t, []regStep{stepAdd("a")})
	regMustNoErr(t, r.SetSession(ctx, "a", []byte(`{"keep":1}`)))
	for _, bad := range []string{``, ` `, `null`, `[]`, `[{"a":1}]`, `"s"`, `1`, `true`,
		`{`, `{"a":}`, `{}{}`, `{} x`, `{"a":1}]`, `{'a':1}`} {
		t.Run(bad, func(t *testing.T) {
			if err := r.SetSession(ctx, "a", []byte(bad)); !errors.Is(err, abi.ErrnoInvalid) {
				t.Errorf("SetSession(%q) = %v, want invalid", bad, err)
			}
			if err := r.UpdateSession(ctx, "a", []byte(bad)); !errors.Is(err, abi.ErrnoInvalid) {
				t.Errorf("UpdateSession(%q) = %v, want invalid", bad, err)
			}
		})
	}
	regAssertSession(t, r, "a", `{"keep":1}`)
	regMustNoErr(t, r.SetSession(ctx, "a", []byte(" \n{\"a\":1}\n ")))
	regAssertSession(t, r, "a", `{"a":1}`)
}

// checkRegistryInvariants checks, with the registry quiescent, that the uid
// and group indexes mirror the client entries exactly and hold no empty set.
func checkRegistryInvariants(t *testing.T, r *Local) {
	t.Helper()
	wantUids, wantGroups := map[string][]string{}, map[string][]string{}
	for i := range r.clients {
		for id, c := range r.clients[i].clients {
			if c.uid != "" {
				wantUids[c.uid] = append(wantUids[c.uid], id)
			}
			for g := range c.groups {
				wantGroups[g] = append(wantGroups[g], id)
			}
		}
	}
	regCheckIndex(t, "uid", &r.uids, wantUids, r.uidShard)
	regCheckIndex(t, "group", &r.groups, wantGroups, r.groupShard)
}

func regCheckIndex(t *testing.T, what string, shards *[regShardCount]regIndexShard,
	want map[string][]string, shardOf func(string) *regIndexShard) {
	t.Helper()
	n := 0
	for i := range shards {
		for key, set := range shards[i].sets {
			n++
			if shardOf(key) != &shards[i] {
				t.Errorf("%s %q in the wrong shard", what, key)
			}
			regWantList(t, what+" index "+key, regSorted(regKeys(set, nil)), regSorted(want[key]))
		}
	}
	if n != len(want) {
		t.Errorf("%s index has %d keys, entries name %d", what, n, len(want))
	}
}

func TestLocalRegistry_Hammer(t *testing.T) {
	const workers, iters = 8, 20000
	ctx := t.Context()
	r := NewLocal()
	ids := regNames("c", 8)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for range iters {
				regRandomOp(ctx, r, rng, ids)
			}
		})
	}
	wg.Wait()
	checkRegistryInvariants(t, r)
	for _, id := range ids {
		regMust(r.RemoveClient(ctx, id))
	}
	if n := regMust(r.ClientCount(ctx)); n != 0 {
		t.Errorf("ClientCount = %d after removing all", n)
	}
	regWantList(t, "Uids", regMust(r.Uids(ctx)), nil)
	regWantList(t, "GroupIDs", regMust(r.GroupIDs(ctx)), nil)
	regWantList(t, "ClientIDs", regMust(r.ClientIDs(ctx)), nil)
	checkRegistryInvariants(t, r)
}

func regNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = prefix + strconv.Itoa(i)
	}
	return names
}

// regRandomOp performs one random call; errors (unknown or duplicate client)
// are expected and ignored.
func regRandomOp(ctx context.Context, r *Local, rng *rand.Rand, ids []string) {
	id := ids[rng.IntN(len(ids))]
	uid := "u" + strconv.Itoa(rng.IntN(4))
	group := "g" + strconv.Itoa(rng.IntN(4))
	switch rng.IntN(12) {
	case 0, 1:
		_ = r.AddClient(ctx, id)
	case 2:
		_, _ = r.RemoveClient(ctx, id)
	case 3:
		_ = r.BindUid(ctx, id, uid)
	case 4:
		_ = r.UnbindUid(ctx, id, uid)
	case 5, 6:
		_ = r.JoinGroup(ctx, id, group)
	case 7:
		_ = r.LeaveGroup(ctx, id, group)
	case 8:
		_ = r.Ungroup(ctx, group)
	case 9:
		_ = r.UpdateSession(ctx, id, []byte(`{"n":{"`+uid+`":1}}`))
	case 10:
		_, _ = r.GroupUids(ctx, group)
		_, _ = r.Session(ctx, id)
	default:
		_, _ = r.Uids(ctx)
		_, _ = r.GroupIDs(ctx)
	}
}

func BenchmarkLocalRegistry_BindUid(b *testing.B) {
	ctx := b.Context()
	r := NewLocal()
	ids, uids := regNames("client-", 1024), regNames("user-", 10)
	for _, id := range ids {
		_ = r.AddClient(ctx, id)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Each id is rebound to a different uid on each visit.
		if err := r.BindUid(ctx, ids[i%len(ids)], uids[i%len(uids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLocalRegistry_JoinGroup measures a JoinGroup plus the LeaveGroup
// that undoes it, so that every join does real work. Each group keeps one
// other member, as a live group would, so its set is not recreated each time.
func BenchmarkLocalRegistry_JoinGroup(b *testing.B) {
	ctx := b.Context()
	r := NewLocal()
	ids, groups := regNames("client-", 1024), regNames("group-", 16)
	for _, id := range ids {
		_ = r.AddClient(ctx, id)
	}
	for _, g := range groups {
		_ = r.AddClient(ctx, "anchor-"+g)
		_ = r.JoinGroup(ctx, "anchor-"+g, g)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id, g := ids[i%len(ids)], groups[i%len(groups)]
		if err := r.JoinGroup(ctx, id, g); err != nil {
			b.Fatal(err)
		}
		_ = r.LeaveGroup(ctx, id, g)
		i++
	}
}

func BenchmarkLocalRegistry_GroupClients(b *testing.B) {
	ctx := b.Context()
	r := NewLocal()
	for _, id := range regNames("client-", 1000) {
		_ = r.AddClient(ctx, id)
		_ = r.JoinGroup(ctx, id, "room")
	}
	b.ReportAllocs()
	for b.Loop() {
		if ids, _ := r.GroupClients(ctx, "room"); len(ids) != 1000 {
			b.Fatal(fmt.Sprint("got ", len(ids)))
		}
	}
}

// TestLocalRegistry_PerClientLimits: each bound refuses with its errno and
// leaves the state as it was; with no limits the same calls succeed.
func TestLocalRegistry_PerClientLimits(t *testing.T) {
	ctx := t.Context()
	r := NewLocalWithLimits(Limits{MaxSessionBytes: 64, MaxGroupsPerClient: 2, MaxNameBytes: 8})
	regMustNoErr(t, r.AddClient(ctx, "c"))
	for _, tc := range []struct {
		what string
		err  error
		want abi.Errno
	}{
		{"long uid", r.BindUid(ctx, "c", "123456789"), abi.ErrnoTooLarge},
		{"long group", r.JoinGroup(ctx, "c", "123456789"), abi.ErrnoTooLarge},
		{"long session key", r.SetSession(ctx, "c", []byte(`{"a":[{"123456789":1}]}`)), abi.ErrnoTooLarge},
		{"join 1", r.JoinGroup(ctx, "c", "g1"), abi.ErrnoSuccess},
		{"join 2", r.JoinGroup(ctx, "c", "g2"), abi.ErrnoSuccess},
		{"join 2 again", r.JoinGroup(ctx, "c", "g2"), abi.ErrnoSuccess},
		{"join 3", r.JoinGroup(ctx, "c", "g3"), abi.ErrnoLimit},
		{"session at the limit", r.SetSession(ctx, "c", []byte(`{"a":"`+strings.Repeat("x", 56)+`"}`)), abi.ErrnoSuccess},
		{"update past the limit", r.UpdateSession(ctx, "c", []byte(`{"b":1}`)), abi.ErrnoLimit},
		{"set past the limit", r.SetSession(ctx, "c", []byte(`{"a":"`+strings.Repeat("x", 57)+`"}`)), abi.ErrnoLimit},
	} {
		if got := abi.ErrnoOf(tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, tc.err, tc.want)
		}
	}
	regWantList(t, "groups of g3", regMust(r.GroupClients(ctx, "g3")), []string{})
	if got := string(regMust(r.Session(ctx, "c"))); len(got) != 64 || !strings.HasPrefix(got, `{"a":"xx`) {
		t.Errorf("session after refused writes: %s", got)
	}
	regMustNoErr(t, r.LeaveGroup(ctx, "c", "g1"))
	regMustNoErr(t, r.JoinGroup(ctx, "c", "g3")) // a place freed

	free := NewLocal()
	regMustNoErr(t, free.AddClient(ctx, "c"))
	regMustNoErr(t, free.BindUid(ctx, "c", strings.Repeat("u", 65000)))
	for i := range 300 {
		regMustNoErr(t, free.JoinGroup(ctx, "c", strconv.Itoa(i)))
	}
}

// TestLocalRegistry_ConcurrentUpdateSessionLosesNoKey: UpdateSession merges
// outside the lock and retries when it lost a race, so concurrent updates
// of one session all land.
func TestLocalRegistry_ConcurrentUpdateSessionLosesNoKey(t *testing.T) {
	ctx := t.Context()
	r := NewLocal()
	regMustNoErr(t, r.AddClient(ctx, "c"))
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := r.UpdateSession(ctx, "c", []byte(fmt.Sprintf(`{"k%d_%d":%d}`, w, i, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var got map[string]any
	if err := json.Unmarshal(regMust(r.Session(ctx, "c")), &got); err != nil || len(got) != writers*each {
		t.Fatalf("%d keys (%v), want %d", len(got), err, writers*each)
	}
}

// TestLocalRegistry_SessionMemoryBoundedByItsEncoding: max_session_bytes
// bounds what a session holds in memory, not only its JSON. A session of
// many tiny keys ({"0":[],"1":[],…}) used to be kept decoded beside its
// encoding: ~13× max_session_bytes of maps, interfaces and slices per
// client.
func TestLocalRegistry_SessionMemoryBoundedByItsEncoding(t *testing.T) {
	const clients, limit = 100, 64 << 10
	ctx := t.Context()
	r := NewLocalWithLimits(Limits{MaxSessionBytes: limit, MaxGroupsPerClient: 8, MaxNameBytes: 64})
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; b.Len() < limit-64; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%d":[]`, i)
	}
	b.WriteByte('}')
	session := []byte(b.String())
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	for i := range clients {
		id := fmt.Sprint("c", i)
		regMustNoErr(t, r.AddClient(ctx, id))
		regMustNoErr(t, r.SetSession(ctx, id, session))
		regMustNoErr(t, r.UpdateSession(ctx, id, []byte(`{"x":1}`)))
	}
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	perClient := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / clients
	if perClient > 2*limit {
		t.Errorf("a %d-byte session of tiny keys holds %d bytes per client, want at most 2× its encoding", len(session), perClient)
	}
	got, err := r.Session(ctx, "c0")
	regMustNoErr(t, err)
	if !bytes.HasSuffix(got, []byte(`,"x":1}`)) && !bytes.Contains(got, []byte(`"x":1`)) {
		t.Errorf("the update was lost: session ends %q", got[max(0, len(got)-20):])
	}
	goruntime.KeepAlive(r)
}

// TestLocal_ShardsAreSeeded: keys chosen to collide under a fixed hash (the
// FNV-1a the registry used, which anyone can compute) must not all land in
// one shard, or one client could serialise every registry call on one lock.
// On the old code all of them went to shard 0.
func TestLocal_ShardsAreSeeded(t *testing.T) {
	fnv := func(key string) uint32 {
		h := uint32(2166136261)
		for i := 0; i < len(key); i++ {
			h ^= uint32(key[i])
			h *= 16777619
		}
		return h & (regShardCount - 1)
	}
	var keys []string
	for i := 0; len(keys) < 256; i++ {
		if k := "uid" + strconv.Itoa(i); fnv(k) == 0 {
			keys = append(keys, k)
		}
	}
	r := NewLocal()
	shards := map[int]bool{}
	for _, k := range keys {
		shards[r.shardOf(k)] = true
	}
	if len(shards) < 2 {
		t.Fatalf("256 keys that collide under FNV-1a all landed in one shard: the shard hash is not seeded")
	}
}

// TestLocal_ErrorsNameNoPackage: errors reach users (push replies, guest
// logs), so they name the problem, not this package.
func TestLocal_ErrorsNameNoPackage(t *testing.T) {
	ctx := t.Context()
	r := NewLocalWithLimits(Limits{MaxNameBytes: 4})
	_ = r.AddClient(ctx, "a")
	for _, err := range []error{
		r.BindUid(ctx, "missing", "u"),
		r.BindUid(ctx, "a", ""),
		r.JoinGroup(ctx, "a", "too-long"),
	} {
		if err == nil || strings.Contains(err.Error(), "registry") {
			t.Errorf("error %v: want one that does not name the package", err)
		}
	}
}
