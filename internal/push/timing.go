package push

import (
	"context"
	"sort"
	"sync/atomic"

	"github.com/wasmgate/wasmgate/internal/metrics"
	"github.com/wasmgate/wasmgate/internal/wire"
)

// Push command timing: every command a backend runs, on the text port or
// the HTTP API, is timed into its own fixed-bucket histogram
// (wasmgate_push_command_duration_seconds), and its answers counted by
// result (wasmgate_push_commands_total; the failures also as
// wasmgate_push_commands_failed_total). The table is built once, at New:
// looking a command up finds its histogram with it, at no extra cost.

// timedCommand is a command with its histogram.
type timedCommand struct {
	run  command
	took metrics.Histogram
	// ok and failed count the answers by result (ok:true, ok:false), each
	// added to after the histogram, so that /metrics never sees one
	// result's count step back.
	ok, failed atomic.Uint64
	// batchable: the text port and HTTP API batches may queue its cluster
	// publishes (publishpipe.go).
	batchable bool
}

func timedCommands(table map[string]command) map[string]*timedCommand {
	out := make(map[string]*timedCommand, len(table))
	for name, run := range table {
		out[name] = &timedCommand{run: run, batchable: isBatchable(name)}
	}
	return out
}

// call runs the command and times it.
func (c *timedCommand) call(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	result, err := c.timed(ctx, g, r)
	c.count(err)
	return result, err
}

// timed runs the command and times it without counting its answer: a
// batched send is counted once its PUBLISHes are answered (count).
func (c *timedCommand) timed(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	start := metrics.Now()
	result, err := c.run(ctx, g, r)
	c.took.Since(start)
	return result, err
}

// count counts an answer by result.
func (c *timedCommand) count(err error) {
	if err != nil {
		c.failed.Add(1)
	} else {
		c.ok.Add(1)
	}
}

// CommandStats is one push command's line in Status: how often it
// succeeded and failed, and how long it took.
type CommandStats struct {
	Name    string                    `json:"name"`
	OK      uint64                    `json:"ok"`
	Failed  uint64                    `json:"failed"`
	Latency metrics.HistogramSnapshot `json:"latency"`
}

// commandStats returns the commands run at least once, by name.
func (p *Ports) commandStats() []CommandStats {
	var out []CommandStats
	for name, c := range p.commands {
		if s := c.took.Snapshot(); s.Count() > 0 {
			out = append(out, CommandStats{Name: name, OK: c.ok.Load(), Failed: c.failed.Load(), Latency: s})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
