// Command wasmgate runs the wasmgate WebSocket gateway.
//
//	wasmgate start [-c config.toml]   serve in the foreground
//	wasmgate check [-c config.toml]   validate the config and load every module
//	wasmgate reload [-c config.toml]  make the running gateway reload its modules
//	wasmgate restart [-c config.toml] hand over to the binary on disk without refusing anyone
//	wasmgate version                  print the version, commit, Go and wazero versions
//	wasmgate help                     print the usage (also -h, --help)
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
}
