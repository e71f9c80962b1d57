module github.com/wasmgate/wasmgate/guest-examples

go 1.26
