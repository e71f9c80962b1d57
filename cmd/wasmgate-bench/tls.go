package main

import (
	"fmt"
	"path/filepath"

	"github.com/wasmgate/wasmgate/internal/selfsigned"
)

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and its
// key into dir, for serve -tls, and returns their paths. The echo phase
// measures the record layer once connections are open, not handshakes.
func selfSignedCert(dir string) ([2]string, error) {
	files := [2]string{filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")}
	if err := selfsigned.Write(files[0], files[1], "wasmgate-bench"); err != nil {
		return files, fmt.Errorf("serve -tls: %w", err)
	}
	return files, nil
}
