package abi

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// ABI.md is the contract for people; this package is the same contract for
// code. These tests parse ABI.md's tables and compare them with it.

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tableRows returns the cells of every table row whose first cell is a
// code span, keyed by that span.
func tableRows(doc string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[strings.Trim(cells[0], "`")] = cells[1:]
	}
	return rows
}

func typeName(v ValueType) string {
	if v == I64 {
		return "i64"
	}
	return "i32"
}

func TestDoc_HostFunctionTablesMatchHostFuncs(t *testing.T) {
	rows := tableRows(readDoc(t))
	for _, f := range HostFuncs() {
		row, ok := rows[f.Name]
		if !ok || len(row) < 2 {
			t.Errorf("ABI.md has no table row for host function %s", f.Name)
			continue
		}
		var params []string
		for i, p := range f.ParamNames {
			if f.Params[i] == I64 {
				p += ": i64"
			}
			params = append(params, p)
		}
		want := "—"
		if len(params) > 0 {
			want = "`" + strings.Join(params, ", ") + "`"
		}
		if row[0] != want {
			t.Errorf("%s: ABI.md parameters %s, abi.HostFuncs has %s", f.Name, row[0], want)
		}
		docI64 := strings.HasPrefix(row[1], "`i64`")
		if got := f.Results[0] == I64; got != docI64 {
			t.Errorf("%s: ABI.md says the result is i64: %v; abi.HostFuncs: %v", f.Name, docI64, got)
		}
	}
}

func TestDoc_ExportTableMatchesGuestExports(t *testing.T) {
	rows := tableRows(readDoc(t))
	for _, e := range GuestExports() {
		row, ok := rows[e.Name]
		if !ok || len(row) < 2 {
			t.Errorf("ABI.md §3 has no row for export %s", e.Name)
			continue
		}
		m := regexp.MustCompile("^`\\((.*)\\) -> (i32|i64)`$").FindStringSubmatch(row[0])
		if m == nil {
			t.Errorf("%s: cannot parse signature %s", e.Name, row[0])
			continue
		}
		var params []string
		if m[1] != "" {
			for _, p := range strings.Split(m[1], ", ") {
				_, typ, _ := strings.Cut(p, ": ")
				params = append(params, typ)
			}
		}
		var want []string
		for _, p := range e.Params {
			want = append(want, typeName(p))
		}
		if strings.Join(params, ",") != strings.Join(want, ",") || m[2] != typeName(e.Results[0]) {
			t.Errorf("%s: ABI.md signature %s, abi.GuestExports has (%s) -> %s", e.Name, row[0], strings.Join(want, ", "), typeName(e.Results[0]))
		}
		if required := row[1] == "yes"; required != e.Required {
			t.Errorf("%s: ABI.md required %q, abi.GuestExports %v", e.Name, row[1], e.Required)
		}
	}
}

func TestDoc_ErrnoTableListsEveryCode(t *testing.T) {
	doc := readDoc(t)
	start := strings.Index(doc, "| code | name | meaning |")
	if start < 0 {
		t.Fatal("ABI.md has no errno table")
	}
	var codes []int
	for _, line := range strings.Split(doc[start:], "\n")[2:] {
		if !strings.HasPrefix(line, "| ") {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.Split(line, "|")[1]))
		if err != nil {
			t.Fatalf("errno row %q: %v", line, err)
		}
		codes = append(codes, n)
	}
	if len(codes) != len(errnoNames)-1 {
		t.Fatalf("ABI.md lists codes %v; abi has 1..%d", codes, len(errnoNames)-1)
	}
	for i, c := range codes {
		if c != i+1 {
			t.Fatalf("ABI.md lists codes %v; want 1..%d in order", codes, len(errnoNames)-1)
		}
	}
}

func TestDoc_TaskStatusTable(t *testing.T) {
	doc := readDoc(t)
	for name, code := range map[string]int32{"TaskOK": TaskOK, "TaskFailed": TaskFailed, "TaskCrashed": TaskCrashed} {
		if row := "| " + strconv.Itoa(int(code)) + " | `" + name + "` |"; !strings.Contains(doc, row) {
			t.Errorf("ABI.md has no status row %q", row)
		}
	}
}
