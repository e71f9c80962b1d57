package runtime

import (
	"context"
	"sync"

	"github.com/wasmgate/wasmgate/abi"
)

// recordingHost is an abi.Host that records sends and answers queries from
// fixed data. The real host (package server) has its own end-to-end tests;
// this one lets the runtime be tested on its own.
type recordingHost struct {
	abi.Host // unimplemented methods panic, which a test would notice

	mu    sync.Mutex
	sent  []sent
	uids  map[string][]string
	calls int
}

type sent struct {
	to  string
	msg abi.Message
}

func (h *recordingHost) SendToClient(_ context.Context, id string, msg abi.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if id == "offline" {
		return abi.ErrnoNotFound
	}
	h.sent = append(h.sent, sent{id, msg})
	return nil
}

func (h *recordingHost) BindUid(context.Context, string, string) error {
	h.mu.Lock()
	h.calls++
	h.mu.Unlock()
	return nil
}

func (h *recordingHost) GetClientIdByUid(_ context.Context, uid string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	return h.uids[uid], nil
}

func (h *recordingHost) GetClientIdCountByGroup(context.Context, string) (int, error) {
	return 3, nil
}

func (h *recordingHost) GetSession(context.Context, string) ([]byte, error) {
	return []byte(`{"a":1}`), nil
}

func (h *recordingHost) UpdateSession(context.Context, string, []byte) error { return nil }

func (h *recordingHost) messages() []sent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sent(nil), h.sent...)
}
