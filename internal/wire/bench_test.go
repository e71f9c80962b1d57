package wire

import (
	"encoding/json"
	"testing"
)

// Push lines as a backend sends them, one per message: a plain payload (as
// wasmgate-bench sends) and a JSON payload inside the string, which has
// escapes to undo. RATIONALE.md ("Why a JSON scanner of our own on the push
// path") quotes these benchmarks.
var benchLines = []struct{ name, line string }{
	{"plain", `{"id":12345,"cmd":"sendToClient","client_id":"7f000001-1f90-0000000000000042","data":"seq=1234567 ts=1764472800123"}`},
	{"escaped", `{"id":12345,"cmd":"sendToClient","client_id":"7f000001-1f90-0000000000000042","data":"{\"type\":\"tick\",\"seq\":1234567}"}`},
}

// BenchmarkParse is the single pass plus the decoding sendToClient does:
// the client id and the data, aliasing the line when there is no escape
// sequence to undo.
func BenchmarkParse(b *testing.B) {
	for _, bl := range benchLines {
		line := []byte(bl.line)
		b.Run(bl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				var r Request
				if err := Parse(line, &r); err != nil {
					b.Fatal(err)
				}
				if _, ok := Plain(r.ClientID); !ok {
					b.Fatal("client_id")
				}
				if _, ok := Plain(r.Data); !ok {
					if _, ok := Bytes(r.Data); !ok {
						b.Fatal("data")
					}
				}
			}
		})
	}
}

// BenchmarkParse_EncodingJSON is the same work with encoding/json: the
// request unmarshalled into a struct of the fields sendToClient reads.
func BenchmarkParse_EncodingJSON(b *testing.B) {
	type request struct {
		ID       json.RawMessage `json:"id"`
		Cmd      string          `json:"cmd"`
		ClientID string          `json:"client_id"`
		Data     string          `json:"data"`
	}
	for _, bl := range benchLines {
		line := []byte(bl.line)
		b.Run(bl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				var r request
				if err := json.Unmarshal(line, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
