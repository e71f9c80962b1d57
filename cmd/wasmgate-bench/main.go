// Command wasmgate-bench measures the gateway on loopback: echo throughput
// and latency of the WASM handlers against a native Go echo behind the same
// server.Handler interface, the memory one idle connection costs,
// backend pushes (text port and HTTP API) to 1,000 WebSocket clients, and
// 19,000 clients held for a minute with heartbeats on (the hold phase).
//
// Run without arguments (as `make bench` does) it orchestrates everything
// and prints a Markdown table. The subcommands are the pieces it runs as
// child processes, so that server and clients never share a Go runtime:
//
//	wasmgate-bench [-only echo|idle|tls|push|attack|cluster|deflate|hold] [-duration 10s] [-conns 100]
//	               [-inflight 10] [-idle 8000] [-push-duration 5s] [-push-clients 1000] [-profile DIR]
//	               [-hold-clients 19000] [-hold-duration 60s] [-hold-path /echo] [-serve-bin PATH]
//	               [-cluster-settings single,cluster1,cluster3] [-cluster-reader epoll|goroutine] [-cluster-pollers 1]
//	wasmgate-bench serve -handlers DIR [-modules echo,rust-echo,notify] [-cpuprofile FILE]
//	               [-ping-interval 25s] [-idle-timeout 60s]
//	wasmgate-bench push -mode throughput|paced|inflight|connperpush|http|httpbatch
//	               -ws HOST:PORT -text HOST:PORT [-admin HOST:PORT] [-clients 1000] [-duration 5s]
//	wasmgate-bench load -url ws://HOST:PORT/PATH [-conns 100] [-inflight 10] [-duration 10s] [-size 64]
//	wasmgate-bench idle -addr HOST:PORT [-path /echo] [-n 8000] [-send-one]
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "":
		err = runBench(args)
	case "serve":
		err = runServe(args)
	case "load":
		err = runLoad(args)
	case "idle":
		err = runIdle(args)
	case "push":
		err = runPush(args)
	default:
		err = fmt.Errorf("unknown subcommand %q (want serve, load, idle, push or none)", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "wasmgate-bench %s: %v\n", cmd, err)
		os.Exit(1)
	}
}
