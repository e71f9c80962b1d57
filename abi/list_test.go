package abi

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestList_RoundTrip(t *testing.T) {
	for _, items := range [][]string{nil, {""}, {"ab", "c"}, {"世界", "", "x"}} {
		enc := EncodeList(items)
		if len(enc) != ListSize(items) {
			t.Errorf("%q: size %d, ListSize %d", items, len(enc), ListSize(items))
		}
		got, err := DecodeList(enc)
		if err != nil || !slices.Equal(got, items) {
			t.Errorf("%q: decoded %q, %v", items, got, err)
		}
	}
}

func TestList_ExampleFromABIDoc(t *testing.T) {
	want := []byte{2, 0, 0, 0, 'a', 'b', 1, 0, 0, 0, 'c'}
	if got := EncodeList([]string{"ab", "c"}); !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

func TestDecodeList_Malformed(t *testing.T) {
	for _, b := range [][]byte{{1}, {1, 0, 0}, {5, 0, 0, 0, 'a'}, {0xff, 0xff, 0xff, 0xff}} {
		if _, err := DecodeList(b); !errors.Is(err, ErrnoInvalid) {
			t.Errorf("% x: err = %v, want ErrnoInvalid", b, err)
		}
	}
}

func TestErrno(t *testing.T) {
	if Result(nil) != 0 || Result(ErrnoNotFound) != -3 || Result(errors.New("x")) != -int32(ErrnoInternal) {
		t.Fatal("Result mapping is wrong")
	}
	if ErrnoBadPointer.String() != "bad pointer" || Errno(99).String() != "unknown errno" {
		t.Fatal("names are wrong")
	}
}

func FuzzDecodeList(f *testing.F) {
	f.Add(EncodeList([]string{"ab", "c"}))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := DecodeList(b)
		if err != nil {
			return
		}
		if enc := EncodeList(items); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding % x gives % x", b, enc)
		}
	})
}
