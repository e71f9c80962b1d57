// Package browsertest drives a real headless Chromium over the Chrome
// DevTools Protocol (CDP) for the browser tests of the demo pages, the
// admin dashboard and wasmgate.js (make test-browser; the tests are in
// this package's _test files). It is a small CDP client on the WebSocket
// library the gateway already uses, not a general one: it opens pages,
// evaluates JavaScript in them, waits for conditions, takes screenshots
// and collects each page's JavaScript errors.
//
// Goroutines: one reader per Browser reads every CDP message, hands
// answers to the waiting call (by id) and page events to their Page (by
// session id); it ends when the connection closes. Calls may come from any
// goroutine.
package browsertest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// FindChromium returns the path of a Chromium or Chrome binary on PATH, or
// "" if there is none (make test-browser installs Debian's chromium).
func FindChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is a running headless Chromium and its CDP connection.
type Browser struct {
	cmd  *exec.Cmd
	ws   *websocket.Conn
	wmu  sync.Mutex // serialises writes
	mu   sync.Mutex // guards the fields below
	next int64
	wait map[int64]chan reply
	page map[string]*Page // by CDP session id
	err  error            // why the reader stopped
	done chan struct{}
}

type reply struct {
	Result json.RawMessage
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
}

// Launch starts a headless Chromium with a fresh profile in dir and
// connects to it. Close stops it.
func Launch(ctx context.Context, exe, dir string) (*Browser, error) {
	cmd := exec.Command(exe,
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--password-store=basic", "--use-mock-keychain", "--mute-audio",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir="+dir, "about:blank")
	cmd.SysProcAttr = ChildAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	// Chromium prints "DevTools listening on ws://…" once it is ready.
	found := make(chan string, 1)
	var tail []string
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "DevTools listening on "); ok && !sent {
				found <- strings.TrimSpace(u)
				sent = true
			} else if !sent && len(tail) < 20 {
				tail = append(tail, line)
			}
		}
		if !sent {
			close(found)
		}
	}()
	var url string
	select {
	case u, ok := <-found:
		if !ok {
			_ = cmd.Wait()
			return nil, fmt.Errorf("%s exited before listening: %s", exe, strings.Join(tail, "\n"))
		}
		url = u
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("%s did not start: %w", exe, ctx.Err())
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	ws.SetReadLimit(64 << 20) // screenshots
	b := &Browser{cmd: cmd, ws: ws, wait: map[int64]chan reply{}, page: map[string]*Page{}, done: make(chan struct{})}
	go b.read()
	return b, nil
}

// Close closes the browser and waits for it to exit.
func (b *Browser) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = b.call(ctx, "", "Browser.close", nil)
	_ = b.ws.Close()
	exited := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-exited
	}
}

func (b *Browser) read() {
	defer close(b.done)
	for {
		_, data, err := b.ws.ReadMessage()
		if err != nil {
			b.mu.Lock()
			b.err = err
			for id, ch := range b.wait {
				close(ch)
				delete(b.wait, id)
			}
			b.mu.Unlock()
			return
		}
		var m struct {
			ID        int64           `json:"id"`
			Method    string          `json:"method"`
			Params    json.RawMessage `json:"params"`
			SessionID string          `json:"sessionId"`
			reply
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.wait[m.ID]; ok {
				delete(b.wait, m.ID)
				ch <- m.reply
			}
		} else if p := b.page[m.SessionID]; p != nil {
			p.event(m.Method, m.Params)
		}
		b.mu.Unlock()
	}
}

// call sends one CDP command (in session, "" for the browser) and waits
// for its answer.
func (b *Browser) call(ctx context.Context, session, method string, params any) (json.RawMessage, error) {
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan reply, 1)
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("%s: browser connection closed: %w", method, b.err)
	}
	b.next++
	id := b.next
	b.wait[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b.wmu.Lock()
	err := b.ws.WriteJSON(msg)
	b.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: browser connection closed", method)
		}
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %s (%d)", method, r.Error.Message, r.Error.Code)
		}
		return r.Result, nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.wait, id)
		b.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Page is one browser tab.
type Page struct {
	b       *Browser
	target  string
	session string
	errs    []string // guarded by b.mu
}

// event records a page's JavaScript errors: console.error calls and
// uncaught exceptions (b.mu held).
func (p *Page) event(method string, params json.RawMessage) {
	switch method {
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(params, &e) == nil && (e.Type == "error" || e.Type == "assert") {
			var parts []string
			for _, a := range e.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, fmt.Sprint(a.Value))
				}
			}
			p.errs = append(p.errs, "console."+e.Type+": "+strings.Join(parts, " "))
		}
	case "Runtime.exceptionThrown":
		var e struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		if json.Unmarshal(params, &e) == nil {
			p.errs = append(p.errs, "uncaught: "+e.Details.Text+" "+e.Details.Exception.Description)
		}
	}
}

// NewPage opens a tab of width×height CSS pixels at url and waits for its
// load event.
func (b *Browser) NewPage(ctx context.Context, url string, width, height int) (*Page, error) {
	res, err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"})
	if err != nil {
		return nil, err
	}
	var t struct {
		TargetID string `json:"targetId"`
	}
	if err := json.Unmarshal(res, &t); err != nil {
		return nil, err
	}
	res, err = b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": t.TargetID, "flatten": true})
	if err != nil {
		return nil, err
	}
	var s struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(res, &s); err != nil {
		return nil, err
	}
	p := &Page{b: b, target: t.TargetID, session: s.SessionID}
	b.mu.Lock()
	b.page[s.SessionID] = p
	b.mu.Unlock()
	for _, step := range []struct {
		method string
		params any
	}{
		{"Runtime.enable", nil},
		{"Page.enable", nil},
		{"Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}},
	} {
		if _, err := b.call(ctx, p.session, step.method, step.params); err != nil {
			return nil, err
		}
	}
	return p, p.Navigate(ctx, url)
}

// Navigate loads url and waits until the document has loaded.
func (p *Page) Navigate(ctx context.Context, url string) error {
	res, err := p.b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url})
	if err != nil {
		return err
	}
	var n struct {
		ErrorText string `json:"errorText"`
	}
	if json.Unmarshal(res, &n) == nil && n.ErrorText != "" {
		return fmt.Errorf("navigate to %s: %s", url, n.ErrorText)
	}
	return p.WaitFor(ctx, `document.readyState === "complete"`)
}

// Eval evaluates a JavaScript expression (awaiting a promise) and stores
// its JSON value in out (which may be nil).
func (p *Page) Eval(ctx context.Context, expr string, out any) error {
	res, err := p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true, "userGesture": true,
	})
	if err != nil {
		return err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("evaluate %q: %s %s", expr, r.Exception.Text, r.Exception.Exception.Description)
	}
	if out == nil || len(r.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(r.Result.Value, out)
}

// WaitFor evaluates cond until it is true or ctx ends. It polls (every
// 50 ms): the page's state is only visible by asking.
func (p *Page) WaitFor(ctx context.Context, cond string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		var ok bool
		if err := p.Eval(ctx, "!!("+cond+")", &ok); err != nil {
			lastErr = err
		} else if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %v)", cond, ctx.Err(), lastErr)
			}
			return fmt.Errorf("waiting for %s: %w", cond, ctx.Err())
		case <-tick.C:
		}
	}
}

// Errors returns the JavaScript errors the page has had.
func (p *Page) Errors() []string {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// Screenshot writes a PNG of the page's viewport to path.
func (p *Page) Screenshot(ctx context.Context, path string) error {
	// Only the tab in front renders: a background tab's capture waits.
	if _, err := p.b.call(ctx, p.session, "Page.bringToFront", nil); err != nil {
		return err
	}
	res, err := p.b.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png"})
	if err != nil {
		return err
	}
	var s struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(res, &s); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(s.Data)
	if err != nil {
		return err
	}
	if len(png) == 0 {
		return errors.New("empty screenshot")
	}
	return os.WriteFile(path, png, 0o644)
}

// Close closes the tab.
func (p *Page) Close(ctx context.Context) error {
	_, err := p.b.call(ctx, "", "Target.closeTarget", map[string]any{"targetId": p.target})
	p.b.mu.Lock()
	delete(p.b.page, p.session)
	p.b.mu.Unlock()
	return err
}
