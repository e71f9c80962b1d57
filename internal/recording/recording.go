// Package recording is the file format of a recorded session — the
// events one route's clients caused, and the pushes that changed their
// state — that the server writes (server.record_route) and `wasmgate
// replay` plays back against a module. One JSON object per line (JSONL),
// in the order the server saw the events:
//
//	{"ev":"connect","client":"…","method":"GET","path":"/chat","query":"","remote_addr":"…","headers":[["origin","…"]]}
//	{"ev":"message","client":"…","text":"hello"}
//	{"ev":"message","client":"…","binary":true,"base64":"AAE="}
//	{"ev":"push","cmd":"joinGroup","client":"…","args":["room"]}
//	{"ev":"close","client":"…"}
//
// Message contents are stored as they arrived: a recording holds what the
// clients sent (and their request headers, cookies included).
//
// # Concurrency
//
// A Writer is safe for concurrent use: every client's reader goroutine and
// every push connection writes to it; one mutex orders the lines.
package recording

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// Event kinds.
const (
	Connect = "connect"
	Message = "message"
	Close   = "close"
	Push    = "push"
)

// Push commands a recording may hold: the backend commands that change a
// recorded client's state (GatewayWorker names).
var pushCmds = map[string]int{ // cmd -> number of args after the client id
	"bindUid": 1, "unbindUid": 1, "joinGroup": 1, "leaveGroup": 1, "ungroup": 1,
	"setSession": 1, "updateSession": 1, "closeClient": 0, "destroyClient": 0,
}

// Event is one line of a recording.
type Event struct {
	Ev     string `json:"ev"`
	Client string `json:"client,omitempty"`

	// connect: the upgrade request as on_handshake sees it.
	Method     string      `json:"method,omitempty"`
	Path       string      `json:"path,omitempty"`
	Query      string      `json:"query,omitempty"`
	RemoteAddr string      `json:"remote_addr,omitempty"`
	Headers    [][2]string `json:"headers,omitempty"`

	// message: Text for a text frame; Binary with the frame in Base64.
	Text   string `json:"text,omitempty"`
	Binary bool   `json:"binary,omitempty"`
	Base64 string `json:"base64,omitempty"`

	// push: Cmd (see Validate) with Args after the client id; ungroup has
	// no client and its group in Args.
	Cmd  string   `json:"cmd,omitempty"`
	Args []string `json:"args,omitempty"`
}

// Data returns a message's payload.
func (e *Event) Data() ([]byte, error) {
	if !e.Binary {
		return []byte(e.Text), nil
	}
	return base64.StdEncoding.DecodeString(e.Base64)
}

// Validate reports what is wrong with e, naming the field.
func (e *Event) Validate() error {
	needClient := func() error {
		if e.Client == "" {
			return fmt.Errorf("%s event without a client", e.Ev)
		}
		return nil
	}
	switch e.Ev {
	case Connect, Close:
		return needClient()
	case Message:
		if err := needClient(); err != nil {
			return err
		}
		if _, err := e.Data(); err != nil {
			return fmt.Errorf("message: base64: %w", err)
		}
		if !e.Binary && e.Base64 != "" {
			return errors.New("message: base64 without binary: true")
		}
		return nil
	case Push:
		n, ok := pushCmds[e.Cmd]
		if !ok {
			return fmt.Errorf("push: unknown cmd %q", e.Cmd)
		}
		if e.Cmd != "ungroup" {
			if err := needClient(); err != nil {
				return err
			}
		}
		if len(e.Args) != n {
			return fmt.Errorf("push %s: %d args, want %d", e.Cmd, len(e.Args), n)
		}
		return nil
	}
	return fmt.Errorf("unknown ev %q (want connect, message, close or push)", e.Ev)
}

// MaxLine is the longest line Read accepts: a message of the largest
// max_message_size (64 MiB) in base64, with room for the rest.
const MaxLine = 96 << 20

// Read parses a recording. An error names the line.
func Read(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	var out []Event
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d: more than one JSON value", line)
		}
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the recording: %w", err)
	}
	return out, nil
}

// Writer appends events to a file until it reaches its size bound; then
// it stops recording (one log line says so) rather than grow without end.
type Writer struct {
	log  *slog.Logger
	path string
	max  int64

	mu      sync.Mutex // guards everything below
	f       *os.File
	size    int64
	full    bool
	clients map[string]struct{} // recorded clients, for pushes
}

// Create truncates or creates the file at path; the recording stops at
// maxBytes.
func Create(path string, maxBytes int64, log *slog.Logger) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	return &Writer{log: log, path: path, max: maxBytes, f: f, clients: map[string]struct{}{}}, nil
}

// Write appends e; an event that would pass the bound ends the recording.
func (w *Writer) Write(e *Event) {
	line, err := json.Marshal(e)
	if err != nil {
		return // cannot happen: strings, bools and string lists
	}
	line = append(line, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	switch e.Ev {
	case Connect:
		w.clients[e.Client] = struct{}{}
	case Close:
		delete(w.clients, e.Client)
	}
	if w.full || w.f == nil {
		return
	}
	if w.size+int64(len(line)) > w.max {
		w.full = true
		w.log.Warn("recording stopped: server.record_max_mb reached", "file", w.path, "bytes", w.size)
		return
	}
	if _, err := w.f.Write(line); err != nil {
		w.full = true
		w.log.Error("recording stopped: write failed", "file", w.path, "err", err)
		return
	}
	w.size += int64(len(line))
}

// Recorded reports whether the client connected through the recorded
// route and has not closed: pushes to it are recorded.
func (w *Writer) Recorded(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.clients[id]
	return ok
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
