package abi

import (
	"fmt"
	"testing"
)

// TestErrno_ErrorIsTheName: an Errno ends error chains that people read
// (push replies, logs) with its name alone, not a package prefix.
func TestErrno_ErrorIsTheName(t *testing.T) {
	err := fmt.Errorf("client %q: %w", "c1", ErrnoNotFound)
	if got, want := err.Error(), `client "c1": not found`; got != want {
		t.Fatalf("err = %q, want %q", got, want)
	}
	if ErrnoOf(err) != ErrnoNotFound {
		t.Fatalf("ErrnoOf lost the code: %v", ErrnoOf(err))
	}
}
