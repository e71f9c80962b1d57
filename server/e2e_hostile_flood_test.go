package server_test

import (
	"context"
	"encoding/binary"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/server"
)

// TestHostileGuests_HugeListsRefusedWhileCanaryAnswers: issue 8 item 7 end
// to end. biglist hands send_to_uid an 8 MiB list (2M empty entries, which
// the old host turned into 2M strings per call) from four clients at once,
// over and over; every call is refused with too_large before any string is
// made, and the canary keeps being answered. What the host allocates is the
// measure (RSS would mostly show the guests' own 8 MiB linear memories):
// the old host made 2M strings, 32 MiB of headers alone, per call.
func TestHostileGuests_HugeListsRefusedWhileCanaryAnswers(t *testing.T) {
	srv := startServer(t, handlersWith(t, "biglist", "echo"), nil)
	canary := srv.startCanary(t, "/echo")
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	var req [4]byte
	binary.LittleEndian.PutUint32(req[:], 8<<20)
	attackers := make([]*wsClient, 4)
	for i := range attackers {
		attackers[i] = srv.dial(t, "/biglist")
	}
	for round := range 10 {
		for _, a := range attackers {
			a.send(websocket.BinaryMessage, req[:])
		}
		for i, a := range attackers {
			f, ok := a.next(10 * time.Second)
			if !ok || f.err != nil {
				t.Fatalf("round %d attacker %d: no answer (%v); logs:\n%s", round, i, f.err, srv.logs.String())
			}
			got := f.data
			if len(got) != 4 {
				t.Fatalf("round %d attacker %d: answer %q, want a 4-byte result", round, i, got)
			}
			if r := int32(binary.LittleEndian.Uint32(got)); r != -int32(abi.ErrnoTooLarge) {
				t.Fatalf("round %d attacker %d: send_to_uid returned %d, want -%d (too large)", round, i, r, abi.ErrnoTooLarge)
			}
		}
	}
	canary.check()
	goruntime.ReadMemStats(&ms)
	// 40 refused calls; the guests' memories (4 × 8 MiB, grown) and the
	// canary's traffic stay well under this, 40 × 2M strings do not.
	if spent := ms.TotalAlloc - before; spent > 256<<20 {
		t.Errorf("the server allocated %d MiB during 40 refused huge-list calls", spent>>20)
	}
}

// TestHostileGuests_GroupFloodBounded: issue 8 item 8 end to end. One chat
// client joins 600 distinct rooms as fast as it can; it gets into
// max_groups_per_client of them and "limit reached" for the rest, the
// registry holds no more groups than that, and the canary and a bystander
// keep being answered.
func TestHostileGuests_GroupFloodBounded(t *testing.T) {
	const limit = 64
	srv := hostileChat(t, func(c *server.Config) { c.Server.MaxGroupsPerClient = limit })
	canary := srv.startCanary(t, "/echo")
	bystander := srv.chat(t)
	attacker := srv.chat(t)
	const rooms = 600
	for i := range rooms {
		attacker.sendJSON(map[string]string{"type": "join", "room": fmt.Sprintf("room-%d", i)})
	}
	joined, refused := 0, 0
	for joined+refused < rooms {
		m := attacker.readJSON()
		switch m["type"] {
		case "joined":
			joined++
		case "error":
			if !strings.Contains(fmt.Sprint(m["error"]), "limit") {
				t.Fatalf("join refused with %v, want the limit named", m["error"])
			}
			refused++
		}
	}
	if joined != limit || refused != rooms-limit {
		t.Errorf("joined %d and refused %d of %d rooms, want %d joined", joined, refused, rooms, limit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	groups, err := srv.Gateway().GetAllGroupIdList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) > limit {
		t.Errorf("the registry holds %d groups, want at most %d", len(groups), limit)
	}
	whoamiAnswers(t, bystander)
	canary.check()
}
