module github.com/wasmgate/wasmgate

go 1.26

require github.com/tetratelabs/wazero v1.12.0

require golang.org/x/sys v0.47.0 // indirect
