package push

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestLineReader_Buffered checks that buffered tells whether next can
// return a line without reading, across partial lines and refills.
func TestLineReader_Buffered(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	lr := newLineReader(b, 100, 16<<10, time.Second, func() error { return nil })
	go func() {
		_, _ = a.Write([]byte("one\ntwo\nthr"))
		_, _ = a.Write([]byte("ee\n\nfour\n"))
	}()
	want := []struct {
		line     string
		buffered bool
	}{{"one", true}, {"two", false}, {"three", true}, {"", true}, {"four", false}}
	for _, w := range want {
		line, err := lr.next()
		if err != nil {
			t.Fatal(err)
		}
		if string(line) != w.line || lr.buffered() != w.buffered {
			t.Fatalf("next = %q, buffered %v; want %q, %v", line, lr.buffered(), w.line, w.buffered)
		}
	}
}

// TestLineReader_WholeLineDeadline trickles one line a byte at a time,
// faster than lineTimeout: the line must still be cut once lineTimeout has
// passed since its first byte, while the trickle goes on (re-arming the
// deadline on every read would let it run for as long as the peer likes).
func TestLineReader_WholeLineDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	lr := newLineReader(b, 1<<20, 16<<10, 200*time.Millisecond, func() error { return nil })
	trickling := make(chan struct{}) // closed when the trickle ends
	go func() {
		defer close(trickling)
		_, _ = a.Write([]byte("done\n{"))
		for i := 0; i < 1000; i++ { // about 10 s: 50 times the line timeout
			if _, err := a.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if line, err := lr.next(); err != nil || string(line) != "done" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	_, err := lr.next()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("trickled line: err = %v, want a timeout", err)
	}
	select {
	case <-trickling:
		t.Fatal("the line was cut only after the trickle stopped")
	default:
	}
}
