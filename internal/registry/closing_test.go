package registry_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wasmgate/wasmgate/internal/registry"
)

// scanRegistry hides Local's ClientGroups, so that ClosingStateOf falls
// back to scanning the groups through the Registry interface.
type scanRegistry struct{ registry.Registry }

// TestClosingStateOf_Registries checks the snapshot against Local with and
// without its ClientGroups shortcut, and for an unknown client.
func TestClosingStateOf_Registries(t *testing.T) {
	ctx := context.Background()
	local := registry.NewLocal()
	for _, r := range []registry.Registry{local, scanRegistry{local}} {
		name := fmt.Sprintf("%T", r)
		if err := r.AddClient(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		_ = r.BindUid(ctx, "c1", "u")
		_ = r.JoinGroup(ctx, "c1", "g2")
		_ = r.JoinGroup(ctx, "c1", "g1")
		_ = r.SetSession(ctx, "c1", []byte(`{"a":1}`))
		st := registry.ClosingStateOf(ctx, r, "c1")
		if st.Err != nil || st.Uid != "u" || string(st.Session) != `{"a":1}` || fmt.Sprint(st.Groups) != "[g1 g2]" {
			t.Errorf("%s: got %+v", name, st)
		}
		if _, err := r.RemoveClient(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if st := registry.ClosingStateOf(ctx, r, "c1"); st.Err == nil {
			t.Errorf("%s: unknown client: no error in %+v", name, st)
		}
	}
}
