package push

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/wasmgate/wasmgate/internal/wire"
)

// recordingBatch is a PublishBatch that records what each Exec sent.
type recordingBatch struct {
	n, size int
	execs   []int // payload bytes per Exec
	lens    []int // publishes per Exec
}

type recordingKey struct{}

func (b *recordingBatch) With(ctx context.Context) context.Context {
	return context.WithValue(ctx, recordingKey{}, b)
}
func (b *recordingBatch) Len() int  { return b.n }
func (b *recordingBatch) Size() int { return b.size }
func (b *recordingBatch) Exec(context.Context) []error {
	b.execs, b.lens = append(b.execs, b.size), append(b.lens, b.n)
	b.n, b.size = 0, 0
	return nil
}

// A backend pipelining the largest sends it may, as many as it likes,
// never makes the pipe hold more than its bounds: every Exec carries at
// most maxBatched publishes and maxBatchBytes of payload (plus the one
// send that crossed the bound), and every answer comes, in order. Without
// the bounds, the whole pipeline would be held (here 2,000 sends of 16 KiB:
// 32 MiB) until the backend paused.
func TestPublishPipe_BoundsWhatItHolds(t *testing.T) {
	for _, size := range []int{16 << 10, 10} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			rb := &recordingBatch{}
			pp := &publishPipe{batch: rb, ctx: rb.With(context.Background())}
			c := &timedCommand{batchable: true, run: func(ctx context.Context, _ Gateway, r *wire.Request) (any, error) {
				b := ctx.Value(recordingKey{}).(*recordingBatch)
				b.n++
				b.size += len(r.Data)
				return nil, nil
			}}
			var answers []string
			add := func(dst, id []byte, _ any, err error) []byte {
				answers = append(answers, string(id))
				return dst
			}
			data := make([]byte, size)
			const sends = 2000
			for i := range sends {
				r := wire.Request{ID: []byte(strconv.Itoa(i)), Data: data}
				pp.send(c, nil, &r, nil, add)
				if len(pp.held) > maxBatched {
					t.Fatalf("%d answers held", len(pp.held))
				}
			}
			pp.settle(nil, add)
			for i, n := range rb.execs {
				if n > maxBatchBytes+size || rb.lens[i] > maxBatched {
					t.Fatalf("Exec %d sent %d publishes, %d bytes: over the bounds (%d, %d)", i, rb.lens[i], n, maxBatched, maxBatchBytes)
				}
			}
			if len(answers) != sends {
				t.Fatalf("%d answers for %d sends", len(answers), sends)
			}
			for i, id := range answers {
				if id != fmt.Sprint(i) {
					t.Fatalf("answer %d is for send %s", i, id)
				}
			}
			t.Logf("%d sends of %d bytes: %d pipelines", sends, size, len(rb.execs))
		})
	}
}
