package recording

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriter_RoundTripAndBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	var logs bytes.Buffer
	w, err := Create(path, 400, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(&Event{Ev: Connect, Client: "c1", Path: "/chat", Headers: [][2]string{{"origin", "x"}}})
	w.Write(&Event{Ev: Message, Client: "c1", Text: "héllo"})
	w.Write(&Event{Ev: Message, Client: "c1", Binary: true, Base64: "AAE="})
	if !w.Recorded("c1") || w.Recorded("c2") {
		t.Fatal("Recorded should know c1 only")
	}
	for range 10 { // past the 400-byte bound
		w.Write(&Event{Ev: Message, Client: "c1", Text: strings.Repeat("x", 50)})
	}
	w.Write(&Event{Ev: Close, Client: "c1"})
	if w.Recorded("c1") {
		t.Error("a closed client is no longer recorded")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if len(data) > 400 {
		t.Errorf("file has %d bytes, bound 400", len(data))
	}
	if strings.Count(logs.String(), "recording stopped") != 1 {
		t.Errorf("want one warning: %s", logs.String())
	}
	events, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) < 3 || events[1].Text != "héllo" {
		t.Fatalf("events: %+v", events)
	}
	if b, _ := events[2].Data(); !bytes.Equal(b, []byte{0, 1}) {
		t.Errorf("binary: %x", b)
	}
}

func TestRead_NamesTheBadLine(t *testing.T) {
	for in, want := range map[string]string{
		`{"ev":"connect","client":"c"}` + "\n" + `{"ev":"nope"}`:   `line 2: unknown ev "nope"`,
		`{"ev":"message","client":"c","binary":true,"base64":"!"}`: "line 1: message: base64",
		`{"ev":"push","cmd":"joinGroup","client":"c"}`:             "line 1: push joinGroup: 0 args, want 1",
		`{"ev":"close","client":"c","extra":1}`:                    `line 1: json: unknown field "extra"`,
		`{"ev":"close","client":"c"} {}`:                           "line 1: more than one JSON value",
	} {
		if _, err := Read(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", in, err, want)
		}
	}
}

// FuzzRead: no input panics Read, and what it accepts is valid and survives
// a write and a read.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"ev":"connect","client":"c1","headers":[["a","b"]]}` + "\n" + `{"ev":"message","client":"c1","text":"x"}`))
	f.Add([]byte(`{"ev":"push","cmd":"ungroup","args":["g"]}`))
	f.Add([]byte(`{"ev":"message","client":"c","binary":true,"base64":"AAE="}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		events, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for i := range events {
			if err := events[i].Validate(); err != nil {
				t.Fatalf("accepted an invalid event: %v", err)
			}
			line, _ := json.Marshal(&events[i])
			buf.Write(append(line, '\n'))
		}
		again, err := Read(&buf)
		if err != nil || len(again) != len(events) {
			t.Fatalf("re-read: %v (%d of %d)", err, len(again), len(events))
		}
	})
}
