package wire

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParse_Fields(t *testing.T) {
	var r Request
	line := []byte(` {"id": 7, "cmd":"sendToUid","uid":[4,"x"], "data":"a\"b","extra":{"n":[1,2]},"session":{"a":1}} `)
	if err := Parse(line, &r); err != nil {
		t.Fatal(err)
	}
	if string(r.ID) != "7" || string(r.Cmd) != `"sendToUid"` || string(r.Session) != `{"a":1}` {
		t.Fatalf("fields: id %s cmd %s session %s", r.ID, r.Cmd, r.Session)
	}
	uids, ok := OneOrMany(r.Uid)
	if !ok || !slices.Equal(uids, []string{"4", "x"}) {
		t.Fatalf("uids = %q %v", uids, ok)
	}
	if s, ok := String(r.Data); !ok || s != `a"b` {
		t.Fatalf("data = %q %v", s, ok)
	}
	if r.Group != nil {
		t.Fatal("absent field must be nil")
	}
}

func TestParse_Errors(t *testing.T) {
	tests := map[string]error{
		``: ErrNotJSON, `{`: ErrNotJSON, `{"a":}`: ErrNotJSON, `{"a":1}x`: ErrNotJSON, `{'a':1}`: ErrNotJSON,
		`{"a":01}`: ErrNotJSON, `{"a":"\x"}`: ErrNotJSON, "{\"a\":\"\x01\"}": ErrNotJSON,
		`[1,2]`: ErrNotObject, `"s"`: ErrNotObject, `42`: ErrNotObject, `null`: ErrNotObject,
	}
	for in, want := range tests {
		var r Request
		if err := Parse([]byte(in), &r); !errors.Is(err, want) {
			t.Errorf("Parse(%q) = %v, want %v", in, err, want)
		}
	}
}

// TestParse_Depth checks the nesting limit: MaxDepth levels parse, one more
// is refused with an error naming the limit, as an object field, as a bare
// array and as a nesting bomb the size of a whole max_line.
func TestParse_Depth(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	var r Request
	if err := Parse([]byte(`{"session":`+nest(MaxDepth-1)+`}`), &r); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	if string(r.Session) != nest(MaxDepth-1) {
		t.Fatalf("session = %s", r.Session)
	}
	for name, line := range map[string]string{
		"object field": `{"session":` + nest(MaxDepth) + `}`,
		"object keys":  strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1),
		"bare array":   nest(MaxDepth + 1),
		"bomb":         strings.Repeat("[", 1<<20),
		"object bomb":  `{"cmd":"auth","id":` + strings.Repeat("[", 1<<20),
	} {
		err := Parse([]byte(line), &r)
		if !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "more than 64 levels") {
			t.Errorf("%s: Parse = %v, want ErrTooDeep naming the limit", name, err)
		}
	}
}

// jsonDepth is the deepest nesting of arrays and objects in b, skipping
// strings; on a well-formed prefix it agrees with the parser.
func jsonDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

func TestDecoders_WrongTypes(t *testing.T) {
	if _, ok := String([]byte(`{"a":1}`)); ok {
		t.Error("String accepted an object")
	}
	if _, ok := Key([]byte(`{"a":1}`)); ok {
		t.Error("Key accepted an object")
	}
	if _, ok := Keys([]byte(`["a",{}]`)); ok {
		t.Error("Keys accepted an object element")
	}
	if _, ok := Bool([]byte(`1`)); ok {
		t.Error("Bool accepted a number")
	}
	if k, ok := Key([]byte(`-12`)); !ok || k != "-12" {
		t.Errorf("Key(-12) = %q", k)
	}
}

func TestPlain(t *testing.T) {
	for raw, want := range map[string]string{`"abc"`: "abc", `""`: "", `"é"`: "é"} {
		if got, ok := Plain([]byte(raw)); !ok || string(got) != want {
			t.Errorf("Plain(%s) = %q, %v; want %q", raw, got, ok, want)
		}
	}
	for _, raw := range []string{`"a\nb"`, "\"\xff\"", `12`, `null`, `["a"]`} {
		if got, ok := Plain([]byte(raw)); ok {
			t.Errorf("Plain(%s) = %q, true; want false (String decodes it)", raw, got)
		}
	}
}

func TestAppendOKAndError(t *testing.T) {
	got := string(AppendOK(nil, []byte(`"x"`), []string{"a", "b\n"}))
	if got != "{\"id\":\"x\",\"ok\":true,\"result\":[\"a\",\"b\\n\"]}\n" {
		t.Fatalf("AppendOK = %q", got)
	}
	got = string(AppendError(nil, nil, "not_found", `client "c" is offline`))
	if got != "{\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"client \\\"c\\\" is offline\"}}\n" {
		t.Fatalf("AppendError = %q", got)
	}
}

// FuzzParse checks the hand-written parser against encoding/json: it must
// accept exactly the valid JSON, recognise objects, and return for each
// known field the value encoding/json sees.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"cmd":"sendToClient","client_id":"7f0000010b5400000001","data":"hello"}`,
		`{"cmd":"sendToUid","uid":[1,"2"],"data":"{\"type\":\"task_done\",\"id\":329}"}`,
		`{"uid":"4","lock":"closed","time":1600000000}`,
		`{"cmd":"setSession","client_id":"a","session":{"n":{"m":[1,true,null]}}}`,
		`{"cmd":"auth","secret":"s3\u00e9cret"}`, `[1]`, `{"a":1e5,"b":-0.5E-3}`, "{\"a\":\"\xff\"}",
		`{"session":` + strings.Repeat(`{"a":[`, MaxDepth/2) + strings.Repeat(`]}`, MaxDepth/2) + `}`,
		strings.Repeat(`[`, MaxDepth+1) + strings.Repeat(`]`, MaxDepth+1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var r Request
		err := Parse(line, &r)
		valid := json.Valid(line)
		if errors.Is(err, ErrTooDeep) {
			if d := jsonDepth(line); d <= MaxDepth {
				t.Fatalf("Parse refused %q as too deep; its depth is %d", line, d)
			}
			return
		}
		if valid && jsonDepth(line) > MaxDepth {
			t.Fatalf("Parse = %v for %q, nested %d deep; want ErrTooDeep", err, line, jsonDepth(line))
		}
		if valid != (err == nil || errors.Is(err, ErrNotObject)) {
			t.Fatalf("json.Valid=%v but Parse err=%v for %q", valid, err, line)
		}
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(line, &m) != nil {
			t.Fatalf("Parse accepted %q as an object; encoding/json does not", line)
		}
		checkField(t, "cmd", m, r.Cmd)
		checkField(t, "data", m, r.Data)
		checkField(t, "uid", m, r.Uid)
		checkField(t, "session", m, r.Session)
		if s, ok := String(r.Data); ok {
			var want string
			if json.Unmarshal(r.Data, &want) != nil || want != s {
				t.Fatalf("String(%s) = %q, encoding/json %q", r.Data, s, want)
			}
			var back string
			if json.Unmarshal(AppendString(nil, s), &back) != nil || back != s {
				t.Fatalf("AppendString(%q) does not round-trip", s)
			}
		}
	})
}

func checkField(t *testing.T, key string, m map[string]json.RawMessage, got []byte) {
	t.Helper()
	want, ok := m[key]
	if ok != (got != nil) {
		t.Fatalf("field %s: present %v, parser %q", key, ok, got)
	}
	if !ok {
		return
	}
	var a, b any
	if json.Unmarshal(want, &a) != nil || json.Unmarshal(got, &b) != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("field %s: encoding/json %s, parser %s", key, want, got)
	}
}
