package server

import (
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
	lr := newLineReader(b, 100, time.Second, func() error { return nil })
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
