// Command demo-backend is a tiny "web backend" showing the GatewayWorker
// push flow against a running wasmgate:
//
//  1. its page connects to ws://HOST:8282/notify and receives
//     {"type":"init","client_id":"…"};
//  2. the page POSTs that client_id and a user id to /bind, and the backend
//     binds them over the wasmgate text port (BindUid);
//  3. "start task" POSTs /task; while the job runs (two seconds) the backend
//     pushes {"type":"task_progress","id":329,"percent":25} and then
//     {"type":"task_done","id":329,…} to the user (SendToUid), reaching
//     every tab that user has open.
//
// Run wasmgate (make run) with the text port enabled, then:
//
//	go run ./examples/demo-backend [-listen 127.0.0.1:8080] [-push 127.0.0.1:5678] [-secret S]
//
// and open http://127.0.0.1:8282/demo/tasks (the gateway's page, `make demo`
// runs both) or this backend's own page, http://127.0.0.1:8080/, in two tabs.
// The gateway's page is on another origin: /bind, /task and /healthz answer
// CORS requests from any origin (a demo; a real backend lists its origins
// and authenticates the user).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wasmgate/wasmgate/client"
)

// dialWithRetry waits for wasmgate to come up (make demo starts both at once).
func dialWithRetry(addr, secret string, patience time.Duration) (*client.Client, error) {
	deadline := time.Now().Add(patience)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		gw, err := client.Dial(ctx, addr, client.WithSecret(secret))
		cancel()
		if err == nil || time.Now().After(deadline) {
			return gw, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address this backend serves its page on")
	push := flag.String("push", "127.0.0.1:5678", "wasmgate text port (push.listen)")
	secret := flag.String("secret", "", "wasmgate push.secret, if set")
	ws := flag.String("ws", "", "WebSocket URL for the page (default ws://<page host>:8282/notify)")
	job := flag.Duration("job", 2*time.Second, "how long the simulated task runs")
	flag.Parse()
	if *job <= 0 {
		log.Fatalf("-job %v: must be positive", *job)
	}

	gw, err := dialWithRetry(*push, *secret, 30*time.Second)
	if err != nil {
		log.Fatalf("wasmgate text port: %v (is wasmgate running with [push] listen = %q?)", err, *push)
	}
	defer gw.Close()

	wsJSON, _ := json.Marshal(*ws) // escapes <, > and &: safe inside <script>
	page := strings.Replace(pageHTML, "{{WS}}", string(wsJSON), 1)

	var lastTask atomic.Int64
	lastTask.Store(328) // the first task is 329

	mux := http.NewServeMux()
	// GET /healthz: the gateway's /demo/tasks page asks whether the backend
	// is up before it offers "start task".
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"ok": true})
	})

	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	})

	// POST /bind {"client_id":"…","uid":"4"}. A real backend takes the uid
	// from its own login session, never from the request.
	mux.HandleFunc("POST /bind", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ClientID string `json:"client_id"`
			UID      string `json:"uid"`
		}
		if !readJSON(w, r, &req) || !need(w, req.ClientID, req.UID) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		switch err := gw.BindUid(ctx, req.ClientID, req.UID); {
		case client.IsNotFound(err):
			http.Error(w, "that client_id is not connected", http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
		default:
			log.Printf("bound client %s to user %s", req.ClientID, req.UID)
			writeJSON(w, map[string]any{"ok": true})
		}
	})

	// POST /task {"uid":"4"}: start a simulated job (-job, two seconds) that
	// reports its progress to the user and notifies them when it is done.
	mux.HandleFunc("POST /task", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			UID string `json:"uid"`
		}
		if !readJSON(w, r, &req) || !need(w, req.UID) {
			return
		}
		id := lastTask.Add(1)
		go func() {
			const steps = 4
			for i := 1; i < steps; i++ { // the "job", in steps
				time.Sleep(*job / steps)
				msg, _ := json.Marshal(map[string]any{"type": "task_progress", "id": id, "percent": 100 * i / steps})
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if _, err := gw.SendToUid(ctx, []string{req.UID}, msg); err != nil {
					log.Printf("task %d: progress to user %s: %v", id, req.UID, err)
				}
				cancel()
			}
			time.Sleep(*job / steps)
			msg, _ := json.Marshal(map[string]any{"type": "task_done", "id": id, "result": "report is ready"})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := gw.SendToUid(ctx, []string{req.UID}, msg)
			if err != nil {
				log.Printf("task %d: push to user %s: %v", id, req.UID, err)
				return
			}
			log.Printf("task %d done: pushed to %d connection(s) of user %s", id, n, req.UID)
		}()
		w.WriteHeader(http.StatusAccepted)
		writeJSON(w, map[string]any{"id": id})
	})

	log.Printf("demo backend on http://%s/ (text port %s)", *listen, *push)
	srv := &http.Server{Addr: *listen, Handler: cors(mux), ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// cors lets a page of any origin (the gateway's /demo/tasks) call the
// backend: the JSON POSTs are preflighted, so OPTIONS is answered here.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readJSON decodes a small JSON body into v, answering 400 on failure.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(v); err != nil {
		http.Error(w, "bad JSON body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// need answers 400 unless every value is non-empty.
func need(w http.ResponseWriter, vals ...string) bool {
	for _, v := range vals {
		if v == "" {
			http.Error(w, "missing client_id or uid", http.StatusBadRequest)
			return false
		}
	}
	return true
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

const pageHTML = `<!doctype html>
<meta charset="utf-8">
<title>wasmgate push demo</title>
<style>
body { font: 16px system-ui, sans-serif; margin: 2em; max-width: 44em }
#status { font-size: 1.4em; min-height: 1.5em }
#log { white-space: pre-wrap; background: #f4f4f4; padding: 1em; font-size: 13px }
</style>
<h1>wasmgate push demo</h1>
<p>client_id: <b id="cid">connecting…</b></p>
<p>user id: <input id="uid" value="4" size="6">
  <button id="bind" disabled>bind</button>
  <button id="task" disabled>start task</button></p>
<p id="status"></p>
<pre id="log"></pre>
<script>
const wsURL = {{WS}} || "ws://" + location.hostname + ":8282/notify";
const $ = id => document.getElementById(id);
const log = s => { $("log").textContent += s + "\n"; };
let clientId = "";

async function post(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const text = await r.text();
  if (!r.ok) throw new Error(r.status + " " + text);
  return JSON.parse(text);
}

async function bind() {
  const uid = $("uid").value;
  try {
    await post("/bind", {client_id: clientId, uid});
    log("bound " + clientId + " to user " + uid);
    $("task").disabled = false;
  } catch (e) { log("bind failed: " + e.message); }
}

const ws = new WebSocket(wsURL);
ws.onopen = () => log("connected to " + wsURL);
ws.onclose = e => log("connection closed (" + e.code + ")");
ws.onmessage = e => {
  log("← " + e.data);
  let m;
  try { m = JSON.parse(e.data); } catch { return; }
  if (m.type === "init") {
    clientId = m.client_id;
    $("cid").textContent = clientId;
    $("bind").disabled = false;
    bind();
  } else if (m.type === "task_progress") {
    $("status").textContent = "task " + m.id + " running… " + m.percent + "%";
  } else if (m.type === "task_done") {
    $("status").textContent = "task " + m.id + " finished";
  }
};

$("bind").onclick = bind;
$("task").onclick = async () => {
  try {
    const r = await post("/task", {uid: $("uid").value});
    $("status").textContent = "task " + r.id + " running…";
  } catch (e) { log("task failed: " + e.message); }
};
</script>
`
