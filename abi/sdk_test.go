package abi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// HostFuncs is the one table of host functions. Adding one touches the
// table, its implementation in runtime/hostmodule.go (checked by the
// runtime's TestHostFuncs_* tests), ABI.md (doc_test.go and
// TestHostFuncs_ABIMdHasNoFunctionOutsideTheTable) and the guest SDKs
// (the tests below). Each test fails when a function is in one place and
// not in the other.

const (
	goSDKImports = "../guest-examples/gateway/imports_wasm.go"
	goSDKStubs   = "../guest-examples/gateway/imports_other.go"
	rustSDK      = "../guest-examples/rust/wasmgate/src/sys.rs"
)

// sig is a host function's signature as a comparable string:
// "name(id_ptr i32, flags i32) i32". Parameter names are compared without
// underscores and case, so Go's idPtr matches the ABI's id_ptr.
func sig(name string, params []string, types []ValueType, result ValueType) string {
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = strings.ToLower(strings.ReplaceAll(p, "_", "")) + " " + typeName(types[i])
	}
	return name + "(" + strings.Join(parts, ", ") + ") " + typeName(result)
}

func tableSigs() map[string]string {
	out := map[string]string{}
	for _, f := range HostFuncs() {
		out[f.Name] = sig(f.Name, f.ParamNames, f.Params, f.Results[0])
	}
	return out
}

// goType maps a Go SDK parameter or result type to its wasm value type.
func goType(t *testing.T, e ast.Expr) ValueType {
	t.Helper()
	switch s := types(e); s {
	case "int32", "uint32", "unsafe.Pointer":
		return I32
	case "int64", "uint64":
		return I64
	default:
		t.Fatalf("Go SDK: type %s has no wasm value type here", s)
		return 0
	}
}

func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return types(e.X) + "." + e.Sel.Name
	}
	return "?"
}

// goSigs parses a Go SDK file and returns the signature of every function
// whose name starts with host, and the wasmimport name it declares (if
// any) for each.
func goSigs(t *testing.T, path string) (sigs map[string]string, imports map[string]string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	sigs, imports = map[string]string{}, map[string]string{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || !strings.HasPrefix(fd.Name.Name, "host") {
			continue
		}
		var names []string
		var vts []ValueType
		for _, field := range fd.Type.Params.List {
			for _, n := range field.Names {
				names = append(names, n.Name)
				vts = append(vts, goType(t, field.Type))
			}
		}
		if fd.Type.Results == nil || len(fd.Type.Results.List) != 1 {
			t.Errorf("%s: %s must return exactly one value", path, fd.Name.Name)
			continue
		}
		sigs[fd.Name.Name] = sig("", names, vts, goType(t, fd.Type.Results.List[0].Type))
		if fd.Doc == nil {
			continue
		}
		for _, c := range fd.Doc.List {
			if rest, ok := strings.CutPrefix(c.Text, "//go:wasmimport "); ok {
				mod, name, _ := strings.Cut(rest, " ")
				if mod != HostModule {
					t.Errorf("%s: %s imports from module %q, want %q", path, fd.Name.Name, mod, HostModule)
				}
				imports[fd.Name.Name] = name
			}
		}
	}
	return sigs, imports
}

func TestHostFuncs_GoSDKImportsEveryFunction(t *testing.T) {
	want := tableSigs()
	sigs, imports := goSigs(t, goSDKImports)
	seen := map[string]bool{}
	for goName, name := range imports {
		seen[name] = true
		w, ok := want[name]
		if !ok {
			t.Errorf("Go SDK %s imports %s, which is not in abi.HostFuncs", goName, name)
			continue
		}
		if got := name + sigs[goName]; got != w {
			t.Errorf("Go SDK %s: signature %s; abi.HostFuncs has %s", goName, got, w)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("the Go SDK (%s) has no //go:wasmimport for %s", goSDKImports, name)
		}
	}
	if len(imports) != len(sigs) {
		t.Errorf("%s: %d host* functions but %d //go:wasmimport lines", goSDKImports, len(sigs), len(imports))
	}
}

// TestHostFuncs_GoSDKStubsMatchImports: the non-wasm stand-ins (for tests
// and editors) have the same functions with the same signatures.
func TestHostFuncs_GoSDKStubsMatchImports(t *testing.T) {
	imports, _ := goSigs(t, goSDKImports)
	stubs, _ := goSigs(t, goSDKStubs)
	for name, s := range imports {
		if stubs[name] != s {
			t.Errorf("%s: %s is %q; in %s it is %q", goSDKStubs, name, stubs[name], goSDKImports, s)
		}
	}
	for name := range stubs {
		if _, ok := imports[name]; !ok {
			t.Errorf("%s has %s, which %s does not import", goSDKStubs, name, goSDKImports)
		}
	}
}

var (
	rustBlock = regexp.MustCompile(`(?s)#\[link\(wasm_import_module = "([^"]+)"\)\]\s*extern "C" \{(.*?)\n\}`)
	rustFn    = regexp.MustCompile(`(?s)fn (\w+)\((.*?)\)\s*->\s*(\w+);`)
)

func rustType(t *testing.T, s string) ValueType {
	t.Helper()
	switch s = strings.TrimSpace(s); {
	case s == "i32", s == "u32", strings.HasPrefix(s, "*const "), strings.HasPrefix(s, "*mut "):
		return I32
	case s == "i64", s == "u64":
		return I64
	}
	t.Fatalf("Rust: type %q has no wasm value type here", s)
	return 0
}

// TestHostFuncs_RustSDKImportsEveryFunction: the Rust SDK's raw imports
// (guest-examples/rust/wasmgate/src/sys.rs) are every table function, from
// module wasmgate, with the table's signature and parameter names, and
// nothing else.
func TestHostFuncs_RustSDKImportsEveryFunction(t *testing.T) {
	src, err := os.ReadFile(rustSDK)
	if err != nil {
		t.Fatal(err)
	}
	want := tableSigs()
	blocks := rustBlock.FindAllStringSubmatch(string(src), -1)
	if len(blocks) == 0 {
		t.Fatalf("%s: no extern block of wasm_import_module %q", rustSDK, HostModule)
	}
	seen := map[string]bool{}
	for _, b := range blocks {
		if b[1] != HostModule {
			t.Errorf("%s imports from module %q, want %q", rustSDK, b[1], HostModule)
		}
		for _, m := range rustFn.FindAllStringSubmatch(b[2], -1) {
			var names []string
			var vts []ValueType
			for _, p := range strings.Split(m[2], ",") {
				if strings.TrimSpace(p) == "" {
					continue
				}
				name, typ, _ := strings.Cut(p, ":")
				names = append(names, strings.TrimSpace(name))
				vts = append(vts, rustType(t, typ))
			}
			got := sig(m[1], names, vts, rustType(t, m[3]))
			if w, ok := want[m[1]]; !ok {
				t.Errorf("%s imports %s, which is not in abi.HostFuncs", rustSDK, m[1])
			} else if got != w {
				t.Errorf("%s: signature %s; abi.HostFuncs has %s", rustSDK, got, w)
			}
			seen[m[1]] = true
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("the Rust SDK (%s) does not import %s", rustSDK, name)
		}
	}
}

// TestHostFuncs_ABIMdHasNoFunctionOutsideTheTable is the other direction of
// TestDoc_HostFunctionTablesMatchHostFuncs: every row of ABI.md's host
// function tables (§5) is a function of abi.HostFuncs.
func TestHostFuncs_ABIMdHasNoFunctionOutsideTheTable(t *testing.T) {
	want := tableSigs()
	var documented []string
	inTable := false
	for _, line := range strings.Split(readDoc(t), "\n") {
		switch {
		case strings.HasPrefix(line, "| function | parameters |"):
			inTable = true
		case !strings.HasPrefix(line, "|"):
			inTable = false
		case inTable && strings.HasPrefix(line, "| `"):
			name := strings.Trim(strings.TrimSpace(strings.Split(line, "|")[1]), "`")
			documented = append(documented, name)
			if _, ok := want[name]; !ok {
				t.Errorf("ABI.md documents host function %s, which is not in abi.HostFuncs", name)
			}
		}
	}
	if len(documented) != len(want) {
		slices.Sort(documented)
		t.Errorf("ABI.md's host function tables have %d rows %v; abi.HostFuncs has %d functions", len(documented), documented, len(want))
	}
}

const cHeader = "../guest-examples/c/wasmgate.h"

var cImport = regexp.MustCompile(`(?m)^WG_IMPORT\((\w+)\) (.+?) wasmgate_(\w+)\((.*?)\);$`)

// cType maps a C parameter or result type of wasmgate.h to its wasm value
// type (wasm32: pointers, int and unsigned int are i32; long long is i64).
func cType(t *testing.T, s string) ValueType {
	t.Helper()
	s = strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(s, "*"), s == "int", s == "unsigned int":
		return I32
	case s == "long long":
		return I64
	}
	t.Fatalf("wasmgate.h: type %q has no wasm value type here", s)
	return 0
}

// TestHostFuncs_CHeaderDeclaresEveryFunction: the C SDK declares every
// table function, imported from module wasmgate under its own name, with
// the table's signature and parameter names, and nothing else.
func TestHostFuncs_CHeaderDeclaresEveryFunction(t *testing.T) {
	src, err := os.ReadFile(cHeader)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `#define WG_IMPORT(name) __attribute__((import_module("`+HostModule+`"), import_name(#name)))`) {
		t.Fatalf("%s: WG_IMPORT must import from module %q under the given name", cHeader, HostModule)
	}
	want := tableSigs()
	seen := map[string]bool{}
	for _, m := range cImport.FindAllStringSubmatch(string(src), -1) {
		name := m[1]
		if m[3] != name {
			t.Errorf("%s: WG_IMPORT(%s) declares wasmgate_%s", cHeader, name, m[3])
		}
		var names []string
		var vts []ValueType
		if m[4] != "void" {
			for _, p := range strings.Split(m[4], ",") {
				p = strings.TrimSpace(p)
				i := strings.LastIndexAny(p, " *")
				names = append(names, p[i+1:])
				vts = append(vts, cType(t, p[:i+1]))
			}
		}
		got := sig(name, names, vts, cType(t, m[2]))
		if w, ok := want[name]; !ok {
			t.Errorf("%s imports %s, which is not in abi.HostFuncs", cHeader, name)
		} else if got != w {
			t.Errorf("%s: signature %s; abi.HostFuncs has %s", cHeader, got, w)
		}
		seen[name] = true
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s has no WG_IMPORT for %s", cHeader, name)
		}
	}
}

const asSDK = "../guest-examples/as/wasmgate.ts"

var asImport = regexp.MustCompile(`(?m)^@external\("(\w+)", "(\w+)"\)\nexport declare function wasmgate_(\w+)\((.*?)\): (\w+);$`)

// asType maps an AssemblyScript parameter or result type of wasmgate.ts to
// its wasm value type (wasm32: usize, u32 and i32 are i32).
func asType(t *testing.T, s string) ValueType {
	t.Helper()
	switch strings.TrimSpace(s) {
	case "usize", "u32", "i32":
		return I32
	case "i64", "u64":
		return I64
	}
	t.Fatalf("wasmgate.ts: type %q has no wasm value type here", s)
	return 0
}

// TestHostFuncs_ASSDKDeclaresEveryFunction: the AssemblyScript SDK declares
// every table function, imported from module wasmgate under its own name,
// with the table's signature and parameter names, and nothing else.
func TestHostFuncs_ASSDKDeclaresEveryFunction(t *testing.T) {
	src, err := os.ReadFile(asSDK)
	if err != nil {
		t.Fatal(err)
	}
	want := tableSigs()
	seen := map[string]bool{}
	for _, m := range asImport.FindAllStringSubmatch(string(src), -1) {
		mod, name := m[1], m[2]
		if mod != HostModule {
			t.Errorf("%s: %s is imported from module %q, want %q", asSDK, name, mod, HostModule)
		}
		if m[3] != name {
			t.Errorf("%s: @external(%q) declares wasmgate_%s", asSDK, name, m[3])
		}
		var names []string
		var vts []ValueType
		for _, p := range strings.Split(m[4], ",") {
			if strings.TrimSpace(p) == "" {
				continue
			}
			n, typ, _ := strings.Cut(p, ":")
			names = append(names, strings.TrimSpace(n))
			vts = append(vts, asType(t, typ))
		}
		got := sig(name, names, vts, asType(t, m[5]))
		if w, ok := want[name]; !ok {
			t.Errorf("%s imports %s, which is not in abi.HostFuncs", asSDK, name)
		} else if got != w {
			t.Errorf("%s: signature %s; abi.HostFuncs has %s", asSDK, got, w)
		}
		seen[name] = true
	}
	if n := strings.Count(string(src), "@external("); n != len(seen) {
		t.Errorf("%s: %d @external declarations, %d of them in the expected form", asSDK, n, len(seen))
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s has no @external declaration for %s", asSDK, name)
		}
	}
}
