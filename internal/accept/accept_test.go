package accept

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first n accepts with err, then accepts.
type flakyListener struct {
	net.Listener
	n      int
	err    error
	closed chan struct{}
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.n > 0 {
		l.n--
		return nil, l.err
	}
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	a, _ := net.Pipe()
	return a, nil
}

func (l *flakyListener) Close() error { close(l.closed); return nil }

func TestRetryListener_RetriesUntilAccepted(t *testing.T) {
	fl := &flakyListener{n: 4, err: &net.OpError{Op: "accept", Err: syscall.EMFILE}, closed: make(chan struct{})}
	l := Retry(fl, "test", slog.New(slog.DiscardHandler))
	nc, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	nc.Close()
	if l.failing || l.failures != 4 {
		t.Fatalf("failing %v after %d failures, want recovered after 4", l.failing, l.failures)
	}
}

func TestRetryListener_CloseEndsBackoff(t *testing.T) {
	fl := &flakyListener{n: 1 << 30, err: errors.New("accept4: too many open files"), closed: make(chan struct{})}
	l := Retry(fl, "test", slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond) // let it back off a few times
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still backing off 5s after Close")
	}
}
