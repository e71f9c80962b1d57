package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/wasmgate/wasmgate/abi"
)

func regDecodeSession(t testing.TB, s string) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	m, err := decodeSessionJSON([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

func regEncodeSession(t testing.TB, m map[string]any) string {
	t.Helper()
	b, err := encodeSessionJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSessionMerge(t *testing.T) {
	tests := []struct {
		name, dst, patch, want string
	}{
		{"nil dst", "", `{"a":1}`, `{"a":1}`},
		{"empty patch", `{"a":1}`, `{}`, `{"a":1}`},
		{"add and replace", `{"a":1,"b":2}`, `{"b":"x","c":3}`, `{"a":1,"b":"x","c":3}`},
		{"nested objects merge", `{"o":{"a":1,"n":{"x":1,"y":2}}}`, `{"o":{"b":2,"n":{"y":3}}}`,
			`{"o":{"a":1,"b":2,"n":{"x":1,"y":3}}}`},
		{"object replaced by scalar", `{"o":{"a":1}}`, `{"o":"s"}`, `{"o":"s"}`},
		{"scalar replaced by object", `{"o":"s"}`, `{"o":{"a":1}}`, `{"o":{"a":1}}`},
		{"array replaced whole", `{"l":[1,2,3]}`, `{"l":[9]}`, `{"l":[9]}`},
		{"object replaced by array", `{"o":{"a":1}}`, `{"o":[1]}`, `{"o":[1]}`},
		{"null sets null", `{"a":1}`, `{"a":null}`, `{"a":null}`},
		{"null replaced by object", `{"a":null}`, `{"a":{}}`, `{"a":{}}`},
		{"empty object merges to no change", `{"o":{"a":1}}`, `{"o":{}}`, `{"o":{"a":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, patch := regDecodeSession(t, tt.dst), regDecodeSession(t, tt.patch)
			got := regEncodeSession(t, MergeSession(dst, patch))
			if got != tt.want {
				t.Errorf("merge = %s, want %s", got, tt.want)
			}
			if tt.dst != "" && regEncodeSession(t, dst) != regEncodeSession(t, regDecodeSession(t, tt.dst)) {
				t.Error("merge modified dst")
			}
			if regEncodeSession(t, patch) != regEncodeSession(t, regDecodeSession(t, tt.patch)) {
				t.Error("merge modified patch")
			}
		})
	}
}

func TestSessionDecodeEncode(t *testing.T) {
	for _, bad := range []string{``, `null`, `[]`, `"x"`, `12`, `{`, `{}{}`, `{}]`} {
		if _, err := decodeSessionJSON([]byte(bad)); !errors.Is(err, abi.ErrnoInvalid) {
			t.Errorf("decode(%q) = %v, want invalid", bad, err)
		}
	}
	const in = `{"a":[1,{"b":2.50}],"s":"<\u00e9>","z":-0}`
	if got := regEncodeSession(t, regDecodeSession(t, in)); got != `{"a":[1,{"b":2.50}],"s":"<é>","z":-0}` {
		t.Errorf("round trip = %s", got)
	}
	if got := regEncodeSession(t, nil); got != `{}` {
		t.Errorf("encode(nil) = %s", got)
	}
}

// FuzzUpdateSession sets a session, merges a patch into it through the
// registry, and checks that nothing panics, that bad input is
// abi.ErrnoInvalid, that the result is one JSON object, and that every
// top-level non-object value of the patch is in the result as given.
func FuzzUpdateSession(f *testing.F) {
	seeds := [][2]string{
		{`{}`, `{}`},
		{`{"uid":42,"name":"ann"}`, `{"name":"bob","room":"lobby"}`},
		{`{"user":{"id":1,"roles":["admin"],"prefs":{"lang":"en"}}}`, `{"user":{"prefs":{"lang":"fr","tz":"UTC"}}}`},
		{`{"cart":{"items":[{"sku":"A1","qty":2}],"total":19.99}}`, `{"cart":{"items":[],"total":0}}`},
		{`{"a":{"b":{"c":{"d":1}}}}`, `{"a":{"b":{"c":null}}}`},
		{`{"big":123456789012345678901234567890,"f":1e-7}`, `{"big":1.0}`},
		{`{"s":"<script>&amp;\u2028"}`, `{"s":{"x":"\ud83d\ude00"}}`},
		{`{"x":1}`, `[1,2]`},
		{`null`, `{"a":1}`},
		{`{"a":1}`, `{"a":1} trailing`},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, base, patch []byte) {
		ctx := t.Context()
		// Small bounds, so that the fuzzer reaches them too.
		r := NewLocalWithLimits(Limits{MaxSessionBytes: 256, MaxNameBytes: 16})
		regMustNoErr(t, r.AddClient(ctx, "c"))
		refused := func(err error) bool {
			return errors.Is(err, abi.ErrnoInvalid) || errors.Is(err, abi.ErrnoLimit) || errors.Is(err, abi.ErrnoTooLarge)
		}
		if err := r.SetSession(ctx, "c", base); err != nil && !refused(err) {
			t.Fatalf("SetSession: %v", err)
		}
		before := string(regMust(r.Session(ctx, "c")))
		err := r.UpdateSession(ctx, "c", patch)
		if err != nil && !refused(err) {
			t.Fatalf("UpdateSession: %v", err)
		}
		out := regMust(r.Session(ctx, "c"))
		if len(out) > 256 {
			t.Fatalf("session of %d bytes stored past max_session_bytes 256", len(out))
		}
		if err != nil && string(out) != before {
			t.Fatalf("refused update changed the session: %s -> %s", before, out)
		}
		if k := longSessionKey(regDecodeSession(t, string(out)), 16); k != "" {
			t.Fatalf("key %q stored past max_name_bytes 16", k)
		}
		var got map[string]any
		if !bytes.HasPrefix(out, []byte("{")) || json.Unmarshal(out, &got) != nil || got == nil {
			t.Fatalf("Session = %q, not a JSON object", out)
		}
		if err == nil {
			regCheckPatchApplied(t, regDecodeSession(t, string(patch)), regDecodeSession(t, string(out)))
		}
	})
}

// regCheckPatchApplied checks that each top-level value of patch that is not
// an object appears unchanged in got.
func regCheckPatchApplied(t *testing.T, patch, got map[string]any) {
	t.Helper()
	for k, pv := range patch {
		if _, isObj := pv.(map[string]any); isObj {
			continue
		}
		want := regEncodeSession(t, map[string]any{k: pv})
		if have := regEncodeSession(t, map[string]any{k: got[k]}); have != want {
			t.Errorf("key %q: got %s, want %s", k, have, want)
		}
	}
}
