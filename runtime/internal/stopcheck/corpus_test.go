package stopcheck

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// wazeroDir returns the directory of the wazero module, whose spec test
// suite and examples are the broadest corpus of binaries at hand.
func wazeroDir(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not found")
	}
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Skipf("go list wazero: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// corpusFiles returns every .wasm file of wazero's spec tests and
// experimental examples.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	dir := wazeroDir(t)
	var files []string
	for _, sub := range []string{"internal/integration_test/spectest", "experimental/testdata"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".wasm") {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) == 0 {
		t.Skip("no wazero test binaries found")
	}
	return files
}

// TestWazeroCorpus instruments every module of wazero's spec test suites
// (MVP, 2.0, threads, tail calls, extended const, exception handling, typed
// function references) that wazero compiles, with and without yields and a
// depth bound, and
// checks that the result compiles too and has a stop check after every loop.
func TestWazeroCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: compiles about 8000 modules")
	}
	r := newRuntime(t)
	ctx := context.Background()
	compiled, loops, unsupported := 0, 0, 0
	for _, path := range corpusFiles(t) {
		in, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out, st, ierr := instrument(in, Options{}) // must not panic, whatever the input
		cm, err := r.CompileModule(ctx, in)
		if err != nil {
			continue // malformed or invalid on purpose
		}
		_ = cm.Close(ctx)
		compiled++
		if ierr != nil {
			if errors.Is(ierr, ErrUnsupported) {
				unsupported++
				t.Logf("%s: %v", path, ierr)
				continue
			}
			t.Errorf("%s: wazero compiles it but: %v", path, ierr)
			continue
		}
		cm, err = r.CompileModule(ctx, out)
		if err != nil {
			t.Errorf("%s: instrumented module does not compile: %v", path, err)
			continue
		}
		_ = cm.Close(ctx)
		checkEveryLoopChecked(t, out, st)
		loops += st.loops
		out, st, err = instrument(in, Options{YieldEvery: DefaultYieldEvery})
		if err != nil {
			t.Errorf("%s: with yields: %v", path, err)
			continue
		}
		if cm, err = r.CompileModule(ctx, out); err != nil {
			t.Errorf("%s: instrumented module with yields does not compile: %v", path, err)
			continue
		}
		_ = cm.Close(ctx)
		checkEveryLoopChecked(t, out, st)
		out, st, err = instrument(in, Options{YieldEvery: DefaultYieldEvery, MaxDepth: 1000})
		if err != nil {
			t.Errorf("%s: with a depth bound: %v", path, err)
			continue
		}
		if cm, err = r.CompileModule(ctx, out); err != nil {
			t.Errorf("%s: instrumented module with a depth bound does not compile: %v", path, err)
			continue
		}
		_ = cm.Close(ctx)
		checkEveryLoopChecked(t, out, st)
	}
	t.Logf("%d modules compiled and instrumented, %d loops, %d unsupported", compiled, loops, unsupported)
	if unsupported != 0 {
		t.Errorf("%d modules wazero compiles were refused", unsupported)
	}
}

// TestWazeroCorpusObjdump checks our loop decoder against wasm-objdump on
// every corpus module that wasm-objdump can disassemble.
func TestWazeroCorpusObjdump(t *testing.T) {
	if testing.Short() || os.Getenv("WASMGATE_LONG_TESTS") == "" {
		t.Skip("slow (about 2 min): runs wasm-objdump on about 8000 modules; set WASMGATE_LONG_TESTS=1 (make test-long)")
	}
	if _, err := exec.LookPath("wasm-objdump"); err != nil {
		t.Skip("wasm-objdump (wabt) not installed")
	}
	r := newRuntime(t)
	checked := 0
	for _, path := range corpusFiles(t) {
		in, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cm, err := r.CompileModule(context.Background(), in)
		if err != nil {
			continue
		}
		_ = cm.Close(context.Background())
		if exec.Command("wasm-objdump", "-d", path).Run() != nil {
			continue // a feature wabt 1.0.32 does not know (try_table...)
		}
		_, st, err := instrument(in, Options{})
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			checkLoopsAgainstObjdump(t, path, in, st)
		})
		checked++
	}
	t.Logf("%d modules checked against wasm-objdump", checked)
}

// TestRepoGuests instruments the runtime's own test guests and checks that
// they still compile, with a check after every loop.
func TestRepoGuests(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "*.wasm"))
	copies, _ := filepath.Glob(filepath.Join("testdata", "runtime", "*.wasm"))
	files = append(files, copies...)
	if len(files) == 0 {
		t.Skip("no runtime test guests")
	}
	r := newRuntime(t)
	for _, path := range files {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cm, err := r.CompileModule(context.Background(), in)
			if err != nil {
				if _, _, ierr := instrument(in, Options{}); ierr == nil {
					t.Logf("not a valid module (%v); instrumented anyway", err)
				}
				return
			}
			_ = cm.Close(context.Background())
			out, st := mustInstrument(t, r, in)
			checkEveryLoopChecked(t, out, st)
			out, st = mustInstrumentWith(t, r, in, Options{YieldEvery: DefaultYieldEvery})
			checkEveryLoopChecked(t, out, st)
			checkLoopsAgainstObjdump(t, path, in, st)
		})
	}
}

// compileOrSkip is wazero.Runtime.CompileModule for guests built by the
// tests.
func compileOrSkip(t testing.TB, r wazero.Runtime, wasm []byte) wazero.CompiledModule {
	t.Helper()
	cm, err := r.CompileModule(context.Background(), wasm)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return cm
}
