// Command wasmgate runs the wasmgate WebSocket gateway.
//
//	wasmgate start [-c config.toml]   serve in the foreground
//	wasmgate check [-c config.toml]   validate the config and load every module
//	wasmgate version                  print the version
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
}
