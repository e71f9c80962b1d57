package guestlog

import (
	"github.com/wasmgate/wasmgate/internal/logtest"
	"log/slog"
	"strings"
	"testing"
)

func TestLogWriter_LongLineIsOneRecord(t *testing.T) {
	long := strings.Repeat("x", 3*MaxLine+100)
	cut := long[:MaxLine] + TruncatedMark
	tests := []struct {
		name   string
		writes []string
		flush  bool
		want   []string
	}{
		{"one write", []string{long + "\nnext\n"}, false, []string{cut, "next"}},
		{"many small writes", chunks(long+"\nnext\n", 1000), false, []string{cut, "next"}},
		{"byte by byte", chunks(long+"\nnext\n", 1), false, []string{cut, "next"}},
		{"cut at the newline", []string{long[:MaxLine+1], "\n", "next\n"}, false, []string{cut, "next"}},
		{"exactly the cap", []string{long[:MaxLine] + "\n"}, false, []string{long[:MaxLine]}},
		{"no newline, then flush", []string{long}, true, []string{cut}},
		{"two long lines", []string{long + "\n" + long + "\n"}, false, []string{cut, cut}},
		{"partial line flushed", []string{"a\nb"}, true, []string{"a", "b"}},
		{"empty lines", []string{"\n\na\n\n"}, false, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &logtest.Handler{}
			w := NewWriter(slog.New(h), "m", nil)
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(s))
				}
			}
			if tc.flush {
				w.Flush()
			}
			got := h.All()
			if len(got) != len(tc.want) {
				t.Fatalf("%d records, want %d", len(got), len(tc.want))
			}
			for i, r := range got {
				if r.Msg != tc.want[i] {
					t.Errorf("record %d: %d bytes %.20q…, want %d bytes %.20q…", i, len(r.Msg), r.Msg, len(tc.want[i]), tc.want[i])
				}
				if r.Attrs["module"].String() != "m" {
					t.Errorf("record %d has module %v", i, r.Attrs["module"])
				}
			}
		})
	}
}

func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}
