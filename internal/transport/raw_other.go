//go:build !linux

package transport

import (
	"errors"
	"net"
	"sync"
)

// rawWriter is the portable fallback of conn_linux.go's: there is no raw
// path, so newRawWriter returns nil and every frame is written by the
// connection's writer goroutine through net.Conn (correct everywhere; the
// direct write only saves a goroutine switch per push on Linux).
type rawWriter struct{}

func newRawWriter(net.Conn) *rawWriter { return nil }

func (*rawWriter) write([]byte) (int, error) { return 0, errors.ErrUnsupported }

// rawReader is the portable fallback of raw_linux.go's: newRawReader
// returns nil, and an idle reader waits in NextReader.
type rawReader struct {
	err        error
	wake, more bool
}

func newRawReader(net.Conn, *Conn, *sync.Pool) *rawReader { return nil }

func (*rawReader) read() (*[]byte, []byte, error) { return nil, nil, errors.ErrUnsupported }

func (*rawReader) put(*[]byte) {}

func (*rawReader) readNow(bool) (*[]byte, []byte, error) { return nil, nil, errors.ErrUnsupported }
