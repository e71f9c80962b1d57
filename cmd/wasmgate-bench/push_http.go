package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// httpPush runs http and httpbatch: -workers goroutines, each with its own
// keep-alive connection (one fasthttp.HostClient, MaxConns = workers),
// POST /api/sendToUid with one push, or /api/batch with -batch sendToUid
// requests, and wait for each answer before the next request. Worker w
// pushes only to clients w, w+workers, …, so each client's pushes are
// sequential.
func (r *pushRun) httpPush(ctx context.Context, res *pushResult) error {
	batch := 1
	path := "/api/sendToUid"
	if r.s.mode == "httpbatch" {
		batch, path = r.s.batch, "/api/batch"
	}
	res.Note = fmt.Sprintf("%d keep-alive connections (fasthttp client), one request at a time each", r.s.workers)
	if batch > 1 {
		res.Note += fmt.Sprintf(", %d sendToUid per batch", batch)
	}
	hc := &fasthttp.HostClient{
		Addr:         r.s.admin,
		MaxConns:     r.s.workers,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
	}
	defer hc.CloseIdleConnections()
	url := "http://" + r.s.admin + path
	var wg sync.WaitGroup
	for w := range r.s.workers {
		wg.Go(func() {
			var mine []int
			for i := w; i < len(r.clients); i += r.s.workers {
				mine = append(mine, i)
			}
			r.httpWorker(ctx, hc, url, mine, batch)
		})
	}
	wg.Wait()
	return nil
}

var httpOK = []byte(`{"ok":true,"result":1}`)

func (r *pushRun) httpWorker(ctx context.Context, hc *fasthttp.HostClient, url string, mine []int, batch int) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	var h histogram
	defer func() {
		r.ackMu.Lock()
		r.ackHist.merge(&h)
		r.ackMu.Unlock()
	}()
	var body []byte
	targets := make([]int, batch)
	next := 0
	for !r.stopped() && ctx.Err() == nil {
		ts := r.now()
		body = body[:0]
		if batch > 1 {
			body = append(body, '[')
		}
		for k := range batch {
			i := mine[next]
			next = (next + 1) % len(mine)
			targets[k] = i
			c := r.clients[i]
			c.seq++
			if k > 0 {
				body = append(body, ',')
			}
			body = append(body, '{')
			if batch > 1 {
				body = append(body, `"cmd":"sendToUid",`...)
			}
			body = append(body, `"uid":"`...)
			body = append(body, c.uid...)
			body = append(body, `","data":"`...)
			body = appendPayload(body, c.seq, ts)
			body = append(body, `"}`...)
		}
		if batch > 1 {
			body = append(body, ']')
		}
		req.SetBodyRaw(body)
		if err := hc.Do(req, resp); err != nil {
			r.fail(fmt.Errorf("POST %s: %w", url, err))
			time.Sleep(time.Millisecond)
			continue
		}
		r.requests.Add(1)
		if resp.StatusCode() != fasthttp.StatusOK {
			r.refused(fmt.Appendf(nil, "HTTP %d %s", resp.StatusCode(), resp.Body()))
			continue
		}
		r.httpAnswers(resp.Body(), targets)
		if r.inWindow(ts) {
			h.record(time.Duration(r.now() - ts))
		}
	}
}

// httpAnswers credits the pushes answered {"ok":true,"result":1}: a single
// answer, or an array of them in request order.
func (r *pushRun) httpAnswers(body []byte, targets []int) {
	if len(targets) == 1 {
		if !bytes.HasPrefix(body, httpOK) {
			r.refused(body)
			return
		}
		r.clients[targets[0]].acked++
		r.pushes.Add(1)
		return
	}
	if bytes.Count(body, httpOK) == len(targets) { // the common case, without decoding
		for _, i := range targets {
			r.clients[i].acked++
		}
		r.pushes.Add(uint64(len(targets)))
		return
	}
	var answers []json.RawMessage
	if err := json.Unmarshal(body, &answers); err != nil || len(answers) != len(targets) {
		r.refused(body)
		return
	}
	for k, a := range answers {
		if bytes.Equal(bytes.TrimSpace(a), httpOK) {
			r.clients[targets[k]].acked++
			r.pushes.Add(1)
		} else {
			r.refused(a)
		}
	}
}
