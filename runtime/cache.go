package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
)

// The compilation cache (Config.CacheDir) is wazero's: one file per
// compiled module under a folder named after the wazero version, written to
// a "<key>.<random>.tmp" file and renamed into place. Two things go wrong
// with it in practice, and both are handled here rather than left to an
// operator:
//
//   - a process killed during a cold compile leaves its .tmp file (megabytes)
//     behind for good: sweepCache removes stale ones at start and at Close;
//   - an entry damaged on disk (truncated, bit rot) makes wazero fail the
//     compile ("compilationcache: error reading executable … unexpected
//     EOF") instead of compiling again: compileCached replaces the entry
//     with a fresh compile and logs a warning.

// staleTempAge is how old a cache .tmp file must be to be swept: writing one
// takes well under a second, so an older one has no writer left — even one
// in another process sharing the folder (a `wasmgate check`).
const staleTempAge = time.Minute

// repairPrefix names the scratch folders compileCached compiles into.
const repairPrefix = ".repair-"

// sweepCache removes stale temporary files (and scratch folders) from the
// cache folder dir. Failures are logged, never fatal: the cache is an
// optimisation.
func sweepCache(dir string, log *slog.Logger) {
	if dir == "" {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-staleTempAge)
	stale := func(path string) bool {
		fi, err := os.Stat(path)
		return err == nil && fi.ModTime().Before(cutoff)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir() && strings.HasPrefix(e.Name(), repairPrefix):
			if stale(path) {
				if err := os.RemoveAll(path); err != nil {
					log.Warn("compilation cache: cannot remove a stale scratch folder", "path", path, "err", err)
				}
			}
		case e.IsDir():
			tmps, _ := filepath.Glob(filepath.Join(path, "*.tmp"))
			for _, tmp := range tmps {
				if !stale(tmp) {
					continue
				}
				if err := os.Remove(tmp); err != nil {
					log.Warn("compilation cache: cannot remove a stale temporary file", "path", tmp, "err", err)
					continue
				}
				log.Info("compilation cache: removed a temporary file left by an interrupted compile", "path", tmp)
			}
		}
	}
}

// compileCached is compile that survives a damaged cache entry: when wazero
// fails to read this module's entry, the entry is replaced by a fresh
// compile and the compile retried (wazero then reads the new entry).
func (r *Runtime) compileCached(ctx context.Context, wasm []byte) (wazero.CompiledModule, error) {
	c, err := compile(ctx, r.wz, wasm)
	if err == nil || r.cfg.CacheDir == "" || !strings.Contains(err.Error(), "compilationcache:") {
		return c, err
	}
	r.log.Warn("compilation cache: unreadable entry; compiling again and replacing it", "err", err)
	if rerr := r.replaceCacheEntry(ctx, wasm); rerr != nil {
		return nil, fmt.Errorf("%w (replacing the cache entry failed: %w)", err, rerr)
	}
	return compile(ctx, r.wz, wasm)
}

// replaceCacheEntry compiles wasm in a scratch runtime whose cache is a
// scratch folder inside the cache folder, and renames the entry it writes
// over the damaged one. The entry's name is a hash wazero computes from
// the module and the CPU; compiling with the same wazero on the same
// machine is how to learn it without depending on wazero's internals.
func (r *Runtime) replaceCacheEntry(ctx context.Context, wasm []byte) error {
	scratch, err := os.MkdirTemp(r.cfg.CacheDir, repairPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	cache, err := wazero.NewCompilationCacheWithDir(scratch)
	if err != nil {
		return err
	}
	defer cache.Close(ctx)
	rcfg := wazero.NewRuntimeConfig().WithCompilationCache(cache)
	if r.cfg.MemoryLimitPages > 0 {
		rcfg = rcfg.WithMemoryLimitPages(r.cfg.MemoryLimitPages)
	}
	wz := wazero.NewRuntimeWithConfig(ctx, rcfg)
	defer wz.Close(ctx)
	c, err := compile(ctx, wz, wasm)
	if err != nil {
		return err
	}
	_ = c.Close(ctx)
	moved := 0
	err = filepath.WalkDir(scratch, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".tmp") {
			return err
		}
		rel, err := filepath.Rel(scratch, path)
		if err != nil {
			return err
		}
		target := filepath.Join(r.cfg.CacheDir, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		if err := os.Rename(path, target); err != nil {
			return err
		}
		moved++
		return nil
	})
	if err == nil && moved == 0 {
		err = errors.New("the fresh compile wrote no cache entry")
	}
	return err
}
