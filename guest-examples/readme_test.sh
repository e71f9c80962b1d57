#!/bin/sh
# readme_test.sh SDK: runs the first shell block of SDK/README.md ("From an
# empty folder to a running handler") in a fresh folder, as written, except
# that the server listens on a free port and runs in the background while a
# WebSocket round trip checks the handler answers. SDK is c, rust or as; run
# from guest-examples/ (make c-readme, rust-readme, as-readme).
set -eu
sdk=${1:?usage: readme_test.sh c|rust|as}
here=$(cd "$(dirname "$0")/$sdk" && pwd)
WASMGATE=$(cd "$here/../.." && pwd)
export WASMGATE
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18000)
# The block between ```sh and ```; the start line goes to the background.
awk '/^```sh$/{n++; next} n==1 && /^```$/{exit} n==1' "$here/README.md" |
	sed "s/127.0.0.1:8000/127.0.0.1:$port/" |
	sed 's|^\("$WASMGATE/bin/wasmgate" start .*\)$|\1 > ../server.log 2>\&1 \& echo $! > ../pid|' > "$tmp/steps.sh"

cd "$tmp"
sh -eu steps.sh
pid=$(cat pid)
# A WebSocket round trip, in Go (the repo's toolchain): dial, send, expect
# "hello, world".
cat > "$tmp/ws_test.go" <<GO
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/fasthttp/websocket"
)

func main() {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, _, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:$port/hello", nil)
		if err != nil {
			if time.Now().After(deadline) {
				fmt.Println("dial:", err)
				os.Exit(1)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c.WriteMessage(websocket.TextMessage, []byte("world"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := c.ReadMessage()
		if err != nil || string(msg) != "hello, world" {
			fmt.Printf("reply %q, err %v\n", msg, err)
			os.Exit(1)
		}
		return
	}
}
GO
mkdir -p "$WASMGATE/bin/readme-ws-$sdk" && cp "$tmp/ws_test.go" "$WASMGATE/bin/readme-ws-$sdk/main.go"
(cd "$WASMGATE" && go run ./bin/readme-ws-$sdk) || { cat "$tmp/server.log"; exit 1; }
rm -rf "$WASMGATE/bin/readme-ws-$sdk"
echo "$sdk/README.md: the commands ran; the handler answered on port $port"
