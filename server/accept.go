package server

import "fmt"

// connectionLimit is the number of WebSocket clients the server accepts:
// server.max_connections, lowered so that clients can never take the
// descriptors the process needs for everything else (nofile is
// RLIMIT_NOFILE, 0 if unknown; headroom is server.fd_headroom: backends,
// admin calls, listeners, module and cache files, clients still in their
// handshake). Past it, handshakes are refused with 503 while descriptors
// are left. clamped reports whether the limit lowered max_connections.
func connectionLimit(maxConns int, nofile uint64, headroom int) (limit int, clamped bool, err error) {
	if nofile == 0 || nofile >= uint64(maxConns)+uint64(headroom) {
		return maxConns, false, nil
	}
	if nofile <= uint64(headroom) {
		return 0, false, fmt.Errorf("the open-file limit (RLIMIT_NOFILE %d) leaves no descriptor for clients above server.fd_headroom (%d): raise it (ulimit -n, LimitNOFILE=) or lower server.fd_headroom", nofile, headroom)
	}
	return int(nofile) - headroom, true, nil
}
