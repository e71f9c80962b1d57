package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// loadResult is the JSON line `load` prints.
type loadResult struct {
	URL      string  `json:"url"`
	Conns    int     `json:"conns"`
	Inflight int     `json:"inflight"`
	Size     int     `json:"size"`
	Seconds  float64 `json:"seconds"`
	Msgs     uint64  `json:"msgs"`
	MsgsPerS float64 `json:"msgs_per_s"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	P999us   float64 `json:"p999_us"`
	Errors   int     `json:"errors"`
	// CPUPerMsgUs is serve's CPU time (user+system) over the measured
	// window per echo received in it, in µs; the orchestrator fills it in.
	CPUPerMsgUs float64 `json:"cpu_per_msg_us,omitempty"`
}

// loadSpec is one load run.
type loadSpec struct {
	url                   string
	conns, inflight, size int
	warmup, duration      time.Duration
	deflate, json         bool // -deflate, -json
}

// runLoad is the `load` subcommand: conns clients each keep inflight echo
// messages in flight; after a warm-up it measures for duration and prints
// one JSON line. It prints "MARK begin" and "MARK end" at the measured
// window's edges (the orchestrator reads serve's CPU time there). A wss://
// URL is dialed with TLS, accepting any certificate (serve -tls makes a
// self-signed one).
func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var s loadSpec
	fs.StringVar(&s.url, "url", "", "ws://HOST:PORT/PATH or wss://HOST:PORT/PATH of an echo handler")
	fs.IntVar(&s.conns, "conns", 100, "connections")
	fs.IntVar(&s.inflight, "inflight", 10, "messages in flight per connection")
	fs.IntVar(&s.size, "size", 64, "message size in bytes (at least 8)")
	fs.DurationVar(&s.warmup, "warmup", time.Second, "warm-up before measuring")
	fs.DurationVar(&s.duration, "duration", 10*time.Second, "measured time")
	fs.BoolVar(&s.deflate, "deflate", false, "offer permessage-deflate and compress what is sent")
	fs.BoolVar(&s.json, "json", false, "fill messages with a JSON chat message (after the 8-byte timestamp), not zeros")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.url == "" || s.conns < 1 || s.inflight < 1 || s.size < 8 || s.duration <= 0 {
		return errors.New("need -url, -conns ≥ 1, -inflight ≥ 1, -size ≥ 8, -duration > 0")
	}
	res, err := measure(s)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// measure dials every client, then runs them all over the same window.
func measure(s loadSpec) (loadResult, error) {
	conns, err := dialAll(s.url, s.conns, s.deflate)
	if err != nil {
		return loadResult{}, err
	}
	base := time.Now()
	from, to := s.warmup, s.warmup+s.duration
	go func() {
		time.Sleep(time.Until(base.Add(from)))
		fmt.Println("MARK begin")
		time.Sleep(time.Until(base.Add(to)))
		fmt.Println("MARK end")
	}()
	hists := make([]histogram, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, ws := range conns {
		wg.Go(func() {
			defer ws.Close()
			errs[i] = pingPong(ws, s, base, from, to, &hists[i])
		})
	}
	wg.Wait()
	return summarize(s, hists, errs), nil
}

func summarize(s loadSpec, hists []histogram, errs []error) loadResult {
	var all histogram
	for i := range hists {
		all.merge(&hists[i])
	}
	nerr := 0
	for _, err := range errs {
		if err != nil {
			nerr++
			fmt.Fprintf(os.Stderr, "load: %v\n", err)
		}
	}
	us := func(q float64) float64 { return float64(all.quantile(q)) / 1e3 }
	return loadResult{
		URL: s.url, Conns: s.conns, Inflight: s.inflight, Size: s.size,
		Seconds: s.duration.Seconds(), Msgs: all.total,
		MsgsPerS: float64(all.total) / s.duration.Seconds(),
		P50us:    us(0.50), P99us: us(0.99), P999us: us(0.999), Errors: nerr,
	}
}

// dialAll opens n clients to url, a few at a time.
// benchOrigin is the browser origin the load clients present: serve's
// allowed_origins admit it through their wildcard, so every handshake runs
// the origin check.
const benchOrigin = "https://chat.example.com"

func dialAll(url string, n int, deflate bool) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	errs := make([]error, n)
	d := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096, EnableCompression: deflate,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // serve -tls: self-signed
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			conns[i], _, errs[i] = d.DialContext(context.Background(), url, http.Header{"Origin": {benchOrigin}})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	return conns, nil
}

// pingPong sends inflight messages, then answers each echo with a new
// message until base+to. Each message carries its send time (ns since base)
// in its first 8 bytes; echoes received within [from, to) are recorded.
func pingPong(ws *websocket.Conn, s loadSpec, base time.Time, from, to time.Duration, h *histogram) error {
	_ = ws.SetReadDeadline(base.Add(to))
	_ = ws.SetWriteDeadline(base.Add(to + 5*time.Second))
	out := make([]byte, s.size)
	in := make([]byte, s.size)
	if s.json {
		fillJSON(out[8:])
	}
	send := func() error {
		binary.LittleEndian.PutUint64(out, uint64(time.Since(base)))
		return ws.WriteMessage(websocket.BinaryMessage, out)
	}
	for range s.inflight {
		if err := send(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	for {
		if err := readEcho(ws, in); err != nil {
			if isTimeout(err) {
				return nil
			}
			return fmt.Errorf("read: %w", err)
		}
		now := time.Since(base)
		if now >= from && now < to {
			h.record(now - time.Duration(binary.LittleEndian.Uint64(in)))
		}
		if err := send(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
}

// readEcho reads one message of exactly len(buf) bytes into buf.
func readEcho(ws *websocket.Conn, buf []byte) error {
	_, r, err := ws.NextReader()
	if err != nil {
		return err
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		return fmt.Errorf("short echo: %w", err)
	}
	if n, _ := io.Copy(io.Discard, r); n != 0 {
		return fmt.Errorf("echo longer than %d bytes", len(buf))
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// chatMessage is a typical JSON chat message, for -json payloads.
const chatMessage = `{"type":"say","room":"lobby","from":"user-4711","text":"hello everyone, how is it going?","ts":1718000000123}`

// fillJSON fills b with chatMessage, repeated as needed.
func fillJSON(b []byte) {
	for i := 0; i < len(b); i += copy(b[i:], chatMessage) {
	}
}
