package wasmgatetest_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/runtime"
	"github.com/wasmgate/wasmgate/wasmgatetest"
)

// guest is an example handler built by `make guests`, or a runtime fixture.
func guest(name string) string {
	if strings.HasPrefix(name, "testdata:") {
		return filepath.Join("..", "runtime", "testdata", strings.TrimPrefix(name, "testdata:")+".wasm")
	}
	return filepath.Join("..", "handlers", name+".wasm")
}

func decode(t *testing.T, m abi.Message) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("not JSON: %q", m.Data)
	}
	return v
}

// TestChat_SameInGoAndC drives the Go chat and the C chat through the same
// session and checks uids, groups, sessions, sends and KV alike.
func TestChat_SameInGoAndC(t *testing.T) {
	for _, name := range []string{"chat", "c-chat"} {
		t.Run(name, func(t *testing.T) {
			h := wasmgatetest.Load(t, guest(name), wasmgatetest.Options{Config: "rate_limit=5"})
			alice, bob := h.Connect(), h.Connect()
			for _, step := range []struct {
				c        *wasmgatetest.Client
				msg, typ string
			}{
				{alice, `{"type":"login","uid":"alice"}`, "login"},
				{alice, `{"type":"join","room":"r"}`, "joined"},
				{bob, `{"type":"join","room":"r"}`, "joined"},
				{bob, `{"type":"session_set","session":{"lang":"fr"}}`, "session"},
			} {
				if err := step.c.Send(step.msg); err != nil {
					t.Fatal(err)
				}
				if got := decode(t, step.c.Last())["type"]; got != step.typ {
					t.Fatalf("%s: reply type %v, want %s", step.msg, got, step.typ)
				}
			}
			if alice.Uid() != "alice" || !slices.Equal(h.GroupMembers("r"), sorted(alice.ID, bob.ID)) {
				t.Fatalf("uid %q, members of r %v", alice.Uid(), h.GroupMembers("r"))
			}
			if string(bob.Session()) != `{"lang":"fr","rooms":{"r":true}}` && string(bob.Session()) != `{"lang":"fr"}` {
				t.Fatalf("bob's session: %s", bob.Session())
			}
			alice.Take()
			bob.Take()
			if err := alice.Send(`{"type":"say","text":"hi"}`); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*wasmgatetest.Client{alice, bob} {
				got := c.Take()
				if len(got) != 1 || decode(t, got[0])["text"] != "hi" || decode(t, got[0])["uid"] != "alice" {
					t.Fatalf("%s got %v", c.ID, got)
				}
			}
			// The rate limit counts in the KV store, under rate:<id>.
			if v, ok := h.KV("rate:" + alice.ID); !ok || len(v) == 0 {
				t.Fatalf("rate counter: %q %v", v, ok)
			}
			if err := alice.Close(); err != nil {
				t.Fatal(err)
			}
			if _, ok := h.KV("rate:" + alice.ID); ok && name == "chat" {
				t.Error("chat's on_close should delete the rate counter")
			}
			if gone, code := alice.Closed(); !gone || code != 1001 || slices.Contains(h.Clients(), alice.ID) {
				t.Fatalf("closed %v %d, clients %v", gone, code, h.Clients())
			}
		})
	}
}

func sorted(ids ...string) []string { slices.Sort(ids); return ids }

// TestKick_HandlerClosesClient: close_client records the final message and
// the close, and on_close runs after the event that closed the client.
func TestKick_HandlerClosesClient(t *testing.T) {
	h := wasmgatetest.Load(t, guest("chat"), wasmgatetest.Options{Config: "rate_limit=0"})
	admin, victim := h.Connect(), h.Connect()
	if err := admin.Send(`{"type":"kick","client_id":"` + victim.ID + `","text":"bye"}`); err != nil {
		t.Fatal(err)
	}
	if got := decode(t, victim.Last()); got["type"] != "kicked" || got["error"] != "bye" {
		t.Fatalf("victim got %v", got)
	}
	if gone, code := victim.Closed(); !gone || code != 1000 {
		t.Fatalf("victim closed %v code %d", gone, code)
	}
	if slices.Contains(h.Clients(), victim.ID) {
		t.Fatal("victim still registered")
	}
}

// TestPresence_ClosingState: on_close reads the closing client's state in
// every SDK (Go, C, Rust).
func TestPresence_ClosingState(t *testing.T) {
	for _, name := range []string{"presence", "c-presence", "rust-presence"} {
		t.Run(name, func(t *testing.T) {
			h := wasmgatetest.Load(t, guest(name), wasmgatetest.Options{})
			leaving, other := h.Connect(), h.Connect()
			for _, cmd := range []string{"uid bob", "join g2", "join g1", `session {"k":[1,2]}`} {
				if err := leaving.Send(cmd); err != nil || string(leaving.Last().Data) != "ok" {
					t.Fatalf("%s: %v %q", cmd, err, leaving.Last().Data)
				}
			}
			_ = other.Send("join g1")
			if err := leaving.Close(); err != nil {
				t.Fatal(err)
			}
			want := regexp.MustCompile(`^closed ` + leaving.ID + ` uid=bob groups=g1,g2 session=\{"k":\[1,2\]\}$`)
			if got := other.Last(); !want.Match(got.Data) {
				t.Fatalf("other got %q", got.Data)
			}
		})
	}
}

// TestTasksAndTimers: the handler's own task and timer run as on the
// server, and Task and Timer deliver events by hand.
func TestTasksAndTimers(t *testing.T) {
	h := wasmgatetest.Load(t, guest("tasks"), wasmgatetest.Options{})
	c := h.Connect()
	if err := c.Send(`{"type":"compute","n":10}`); err != nil {
		t.Fatal(err)
	}
	h.WaitFor(t, "the task's on_finish", func() bool { return len(h.Finished()) == 1 })
	if f := h.Finished()[0]; f.Status != abi.TaskOK || f.Err != nil {
		t.Fatalf("finish: %+v", f)
	}
	h.WaitFor(t, "the result", func() bool { return decode(t, c.Last())["type"] == "result" })
	if v := decode(t, c.Last())["value"]; v != float64(55) {
		t.Fatalf("fib(10) = %v", v)
	}
	if err := c.Send(`{"type":"remind","ms":1,"text":"now"}`); err != nil {
		t.Fatal(err)
	}
	h.WaitFor(t, "the timer", func() bool { return len(h.Fired()) == 1 })
	h.WaitFor(t, "the reminder", func() bool { return decode(t, c.Last())["type"] == "reminder" })
	// By hand: a task that traps reports TaskCrashed.
	if _, status := h.Task(99, []byte(`{"n":-2}`)); status != abi.TaskCrashed && status != abi.TaskFailed {
		t.Fatalf("trapping task: status %d", status)
	}
}

// TestTrapAndRefusal: a trap is an error wrapping runtime.ErrTrap; a
// module the server would refuse fails New with its reason.
func TestTrapAndRefusal(t *testing.T) {
	h := wasmgatetest.Load(t, guest("testdata:trap"), wasmgatetest.Options{})
	c := h.Connect()
	if err := c.Send("trap"); !errors.Is(err, runtime.ErrTrap) {
		t.Fatalf("trap: %v", err)
	}
	if err := c.Send("ok"); err != nil || string(c.Last().Data) != "ok" {
		t.Fatalf("after the trap: %v %q", err, c.Last().Data)
	}
	if !strings.Contains(h.Logs(), "handler failed") {
		t.Errorf("logs: %s", h.Logs())
	}
	if _, err := wasmgatetest.New(t.Context(), guest("testdata:version2"), wasmgatetest.Options{}); err == nil || !strings.Contains(err.Error(), "ABI version 2") {
		t.Fatalf("version2: %v", err)
	}
}

// TestHandshake: on_handshake sees the request and may refuse it.
func TestHandshake(t *testing.T) {
	h := wasmgatetest.Load(t, guest("testdata:v1_first"), wasmgatetest.Options{Config: "v1"})
	if c, status, err := h.TryConnect(wasmgatetest.Request{Query: "deny"}); c != nil || status != 403 || err != nil {
		t.Fatalf("deny: %v %d %v", c, status, err)
	}
	c := h.Connect()
	if got := string(c.Last().Data); got != "hello" {
		t.Fatalf("on_connect sent %q", got)
	}
}
