package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// listHost records the size of the uid lists send_to_uid hands it.
type listHost struct {
	*recordingHost
	largest atomic.Int64
}

func (h *listHost) SendToUid(_ context.Context, uids []string, _ abi.Message) (int, error) {
	if n := int64(len(uids)); n > h.largest.Load() {
		h.largest.Store(n)
	}
	return 0, nil
}

// TestReadList_CappedLikeMessages: a list argument over max_message_size
// bytes, or over MaxListItems entries, is refused with too_large before
// the host makes a string of it (issue 8 item 7: a 64 MiB list was 16M
// strings per call).
func TestReadList_CappedLikeMessages(t *testing.T) {
	host := &listHost{recordingHost: &recordingHost{}}
	m := loadWith(t, Config{PoolSize: 1, MaxMessageSize: 1 << 20}, host, "biglist")
	tooLarge := int32(-abi.ErrnoTooLarge)
	for i, tc := range []struct {
		bytes int
		want  func(int32) bool
		what  string
	}{
		{64 << 20, func(rc int32) bool { return rc == tooLarge }, "a 64 MiB list (over max_message_size)"},
		{(MaxListItems + 1) * 4, func(rc int32) bool { return rc == tooLarge }, "MaxListItems+1 entries (under max_message_size)"},
		{MaxListItems * 4, func(rc int32) bool { return rc >= 0 }, "MaxListItems entries"},
	} {
		msg := binary.LittleEndian.AppendUint32(nil, uint32(tc.bytes))
		send(t, m, string(msg))
		got := waitSent(t, host.recordingHost, "c1", i+1)
		rc := int32(binary.LittleEndian.Uint32([]byte(got[i])))
		if !tc.want(rc) {
			t.Errorf("%s: send_to_uid returned %d", tc.what, rc)
		}
	}
	if n := host.largest.Load(); n != MaxListItems {
		t.Errorf("largest list the host saw: %d entries, want %d", n, MaxListItems)
	}
}

func TestDecodeList_AgreesWithABI(t *testing.T) {
	list := abi.EncodeList([]string{"a", "", "ccc"})
	got, e := decodeList(list, 3)
	if e != abi.ErrnoSuccess || !slices.Equal(got, []string{"a", "", "ccc"}) {
		t.Fatalf("decodeList = %q, %v", got, e)
	}
	if _, e := decodeList(list, 2); e != abi.ErrnoTooLarge {
		t.Fatalf("3 entries with a bound of 2: %v, want too large", e)
	}
	if _, e := decodeList(list[:len(list)-1], 3); e != abi.ErrnoInvalid {
		t.Fatalf("truncated list: %v, want invalid", e)
	}
}

// FuzzDecodeList: decodeList accepts exactly what abi.DecodeList accepts,
// with the same entries, unless there are more than the bound.
func FuzzDecodeList(f *testing.F) {
	f.Add(abi.EncodeList([]string{"a", "", "ccc"}), 2)
	f.Add([]byte{1, 0, 0}, 5)
	f.Add(make([]byte, 64), 15)
	f.Fuzz(func(t *testing.T, b []byte, bound int) {
		bound = max(bound%64, 1)
		got, e := decodeList(b, bound)
		want, err := abi.DecodeList(b)
		switch {
		case err != nil && e == abi.ErrnoSuccess:
			t.Fatalf("decodeList accepted %x, abi.DecodeList: %v", b, err)
		case err == nil && len(want) > bound && e != abi.ErrnoTooLarge:
			t.Fatalf("%d entries with a bound of %d: %v", len(want), bound, e)
		case err == nil && len(want) <= bound && (e != abi.ErrnoSuccess || !slices.Equal(got, want)):
			t.Fatalf("decodeList(%x) = %q, %v; want %q", b, got, e, want)
		}
	})
}

// blockingTarget's OnTimer blocks until release is closed.
type blockingTarget struct {
	Target
	entered chan int64
	release chan struct{}
}

func (b *blockingTarget) OnTimer(_ context.Context, id int64, _ []byte) error {
	b.entered <- id
	<-b.release
	return nil
}

// TestTimer_ReadyTimersCountAgainstMaxTimers: a timer that has fired but
// waits for an instance still counts against max_timers, and waiting costs
// no goroutine (issue 8 item 6: set_timer(0, …) in a loop stacked a
// goroutine and a payload per timer, since only pending timers counted).
func TestTimer_ReadyTimersCountAgainstMaxTimers(t *testing.T) {
	target := &blockingTarget{entered: make(chan int64, 10), release: make(chan struct{})}
	ts := newTimerSet(3, 1, func() Target { return target }, nil)
	defer ts.close()
	for range 3 {
		if _, err := ts.set(0, []byte("p")); err != nil {
			t.Fatal(err)
		}
	}
	first := <-target.entered // being delivered: no longer counted
	waitFor(t, "the other two timers to fire", func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return len(ts.pending) == 0 && len(ts.ready) == 2
	})
	if _, err := ts.set(0, nil); err != nil {
		t.Fatalf("third timer while one is being delivered: %v", err)
	}
	if _, err := ts.set(time.Hour, nil); err != abi.ErrnoLimit {
		t.Fatalf("fourth timer with 2 ready and 1 pending: %v, want limit reached", err)
	}
	if n, _ := ts.counts(); n != 3 {
		t.Errorf("counts: %d waiting, want 3", n)
	}
	ts.mu.Lock()
	if ts.delivering != 1 {
		t.Errorf("%d delivery goroutines, want 1", ts.delivering)
	}
	ts.mu.Unlock()
	close(target.release)
	got := []int64{first}
	for len(got) < 4 {
		got = append(got, <-target.entered)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int64{1, 2, 3, 4}) {
		t.Errorf("delivered %v, want timers 1 to 4 once each", got)
	}
}

// TestClose_StopsALoopingTask: Close with a looping on_task under a 1 h
// task deadline returns promptly — the task's context ends and the
// watchdog stops it — where it used to wait for the task (issue 8 item 10).
func TestClose_StopsALoopingTask(t *testing.T) {
	host := &recordingHost{}
	r, logs := newTestRuntimeWith(t, Config{PoolSize: 1, TaskWorkers: 1, EventTimeout: 100 * time.Millisecond, TaskTimeout: time.Hour}, host)
	m, err := loadFixture(t, r, "state", "")
	if err != nil {
		t.Fatal(err)
	}
	send(t, m, "tloop")
	waitFor(t, "the looping task to start", func() bool { return m.Stats().TaskBusy == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("close: %v (after %s)", err, time.Since(start))
	}
	if !strings.Contains(logs.String(), "its caller is gone") {
		t.Errorf("the task should have been stopped as cancelled: %s", logs)
	}
	if len(waitSentNow(host, "finish")) != 0 {
		t.Error("a task stopped by Close must get no on_finish")
	}
}

func waitSentNow(host *recordingHost, to string) []string {
	var got []string
	for _, s := range host.messages() {
		if s.to == to {
			got = append(got, string(s.msg.Data))
		}
	}
	return got
}

// cacheEntries lists the compiled-module files in a cache folder.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestCache_TruncatedEntryIsRecompiled: a cache entry cut short (a disk
// error, a copy interrupted) makes wazero fail the compile with
// "compilationcache: … unexpected EOF"; the runtime replaces the entry and
// loads the module (issue 8 item 19: it used to refuse the module).
func TestCache_TruncatedEntryIsRecompiled(t *testing.T) {
	dir := t.TempDir()
	r, _ := newTestRuntimeWith(t, Config{PoolSize: 1, CacheDir: dir}, &recordingHost{})
	if _, err := loadFixture(t, r, "echo", ""); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	entries := cacheEntries(t, dir)
	if len(entries) != 1 {
		t.Fatalf("cache entries %v, want 1", entries)
	}
	whole, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entries[0], whole[:len(whole)/2], 0o600); err != nil {
		t.Fatal(err)
	}

	host := &recordingHost{}
	r2, logs := newTestRuntimeWith(t, Config{PoolSize: 1, CacheDir: dir}, host)
	m, err := loadFixture(t, r2, "echo", "")
	if err != nil {
		t.Fatalf("load with a truncated cache entry: %v", err)
	}
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "compilation cache: unreadable entry") {
		t.Errorf("no warning logged: %s", logs)
	}
	if got, _ := os.ReadFile(entries[0]); !bytes.Equal(got, whole) {
		t.Errorf("the entry was not replaced: %d bytes, want %d", len(got), len(whole))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, repairPrefix+"*")); len(left) != 0 {
		t.Errorf("scratch folders left: %v", left)
	}
}

// TestCache_StaleTempFilesSwept: the .tmp file a process killed during a
// cold compile leaves behind (megabytes) is removed when a runtime starts;
// one young enough to have a writer is left alone.
func TestCache_StaleTempFilesSwept(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "wazero-v0-test")
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	stale, fresh, entry := filepath.Join(sub, "abc.123.tmp"), filepath.Join(sub, "def.456.tmp"), filepath.Join(sub, "abc")
	for _, p := range []string{stale, fresh, entry} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTempAge)
	for _, p := range []string{stale, entry} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	newTestRuntimeWith(t, Config{PoolSize: 1, CacheDir: dir}, &recordingHost{})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	for _, p := range []string{fresh, entry} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
