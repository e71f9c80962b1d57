package server_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// The case table of TestConformance, numbered as Autobahn|Testsuite's
// cases where one corresponds (docs/CONFORMANCE.md says where a case is
// reduced or added: ids with a letter are this suite's own).

func tmsg(s string) confMsg     { return confMsg{opText, []byte(s)} }
func bmsg(b []byte) confMsg     { return confMsg{opBinary, b} }
func fill(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

// frag builds a data or continuation frame with FIN given.
func frag(fin bool, op byte, p string) []byte { return cframe(fin, 0, op, []byte(p)) }

// unmasked builds a frame without a mask, which a client must never send.
func unmasked(op byte, p []byte) []byte {
	return append([]byte{0x80 | op, byte(len(p))}, p...)
}

// chunked is a step writing b in pieces of n bytes.
func chunked(n int, frames ...[]byte) confStep { return confStep{b: cat(frames...), chunk: n} }

// after is a step that waits for msgs echoes and pongs pongs first.
func after(msgs, pongs int, frames ...[]byte) confStep {
	return confStep{msgs: msgs, pongs: pongs, b: cat(frames...)}
}

var protoErr = []int{1002}

func conformanceCases() []confCase {
	var cs []confCase
	add := func(c ...confCase) { cs = append(cs, c...) }
	// lazy adds a case whose frames are megabytes: built when it runs, so
	// that the suite does not hold every case's frames at once.
	lazy := func(id string, build func() confCase) { cs = append(cs, confCase{id: id, build: build}) }

	// 1: framing — payload lengths at every length-encoding boundary, text
	// and binary, and masking.
	for i, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		p := fill(n, '*')
		add(confCase{id: fmt.Sprintf("1.1.%d", i+1), desc: fmt.Sprintf("text, payload %d", n), steps: []confStep{send(cframe(true, 0, opText, p))}, want: []confMsg{tmsg(string(p))}})
		b := fill(n, 0xfe)
		add(confCase{id: fmt.Sprintf("1.2.%d", i+1), desc: fmt.Sprintf("binary, payload %d", n), steps: []confStep{send(binFrame(b))}, want: []confMsg{bmsg(b)}})
	}
	add(confCase{id: "1.1.8", desc: "text, payload 65536, written in chunks of 997", steps: []confStep{chunked(997, text(strings.Repeat("*", 65536)))}, want: []confMsg{tmsg(strings.Repeat("*", 65536))}},
		confCase{id: "1.2.8", desc: "binary, payload 65536, written in chunks of 997", steps: []confStep{chunked(997, binFrame(fill(65536, 0xfe)))}, want: []confMsg{bmsg(fill(65536, 0xfe))}},
		confCase{id: "1.M.1", desc: "unmasked text frame: fail 1002 (§5.1)", steps: []confStep{send(unmasked(opText, []byte("hello")))}, fail: protoErr},
		confCase{id: "1.M.2", desc: "text, then unmasked ping", steps: []confStep{send(text("hello")), after(1, 0, unmasked(opPing, nil))}, want: []confMsg{tmsg("hello")}, fail: protoErr},
		confCase{id: "1.M.3", desc: "64-bit length with the most significant bit set (§5.2)", steps: []confStep{send([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4})}, fail: []int{1002, 1009}},
	)

	// 2: ping and pong.
	add(confCase{id: "2.1", desc: "ping, no payload", steps: []confStep{send(ping(nil))}, pongs: [][]byte{{}}},
		confCase{id: "2.2", desc: "ping, text payload", steps: []confStep{send(ping([]byte("Hello, world!")))}, pongs: [][]byte{[]byte("Hello, world!")}},
		confCase{id: "2.3", desc: "ping, binary payload", steps: []confStep{send(ping([]byte{0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0, 0xff}))}, pongs: [][]byte{{0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0, 0xff}}},
		confCase{id: "2.4", desc: "ping, 125-byte payload", steps: []confStep{send(ping(fill(125, 0xfe)))}, pongs: [][]byte{fill(125, 0xfe)}},
		confCase{id: "2.5", desc: "ping, 126-byte payload: fail", steps: []confStep{send(ping(fill(126, 0xfe)))}, fail: protoErr},
		confCase{id: "2.6", desc: "ping, 125-byte payload, written 1 byte at a time", steps: []confStep{chunked(1, ping(fill(125, 0xfe)))}, pongs: [][]byte{fill(125, 0xfe)}},
		confCase{id: "2.7", desc: "unsolicited pong, no payload: ignored", steps: []confStep{send(cframe(true, 0, opPong, nil))}},
		confCase{id: "2.8", desc: "unsolicited pong with payload: ignored", steps: []confStep{send(cframe(true, 0, opPong, []byte("unsolicited pong payload")))}},
		confCase{id: "2.9", desc: "unsolicited pong, then ping", steps: []confStep{send(cframe(true, 0, opPong, []byte("unsolicited pong payload")), ping([]byte("ping payload")))}, pongs: [][]byte{[]byte("ping payload")}},
	)
	var pings [][]byte
	var pongs [][]byte
	for i := range 10 {
		p := []byte(fmt.Sprintf("payload-%d", i))
		pings, pongs = append(pings, ping(p)), append(pongs, p)
	}
	add(confCase{id: "2.10", desc: "10 pings: 10 pongs", steps: []confStep{send(pings...)}, pongs: pongs},
		confCase{id: "2.11", desc: "10 pings, written 1 byte at a time", steps: []confStep{chunked(1, pings...)}, pongs: pongs})

	// 3: reserved bits (no extension negotiated).
	add(confCase{id: "3.1", desc: "text with RSV1", steps: []confStep{send(cframe(true, 4, opText, []byte("Hello, world!")))}, fail: protoErr},
		confCase{id: "3.2", desc: "text, then text with RSV2, then ping", steps: []confStep{send(text("Hello, world!")), after(1, 0, cframe(true, 2, opText, []byte("Hello, world!")), ping(nil))}, want: []confMsg{tmsg("Hello, world!")}, fail: protoErr},
		confCase{id: "3.3", desc: "as 3.2 with RSV1+RSV2, frame by frame", steps: []confStep{send(text("Hello, world!")), after(1, 0, cframe(true, 6, opText, []byte("Hello, world!"))), send(ping(nil))}, want: []confMsg{tmsg("Hello, world!")}, fail: protoErr},
		confCase{id: "3.4", desc: "as 3.2 with RSV3, 1 byte at a time", steps: []confStep{send(text("Hello, world!")), {msgs: 1, b: cat(cframe(true, 1, opText, []byte("Hello, world!")), ping(nil)), chunk: 1}}, want: []confMsg{tmsg("Hello, world!")}, fail: protoErr},
		confCase{id: "3.5", desc: "binary with RSV1+RSV3", steps: []confStep{send(cframe(true, 5, opBinary, fill(8, 0xff)))}, fail: protoErr},
		confCase{id: "3.6", desc: "ping with RSV1+RSV2", steps: []confStep{send(cframe(true, 6, opPing, []byte("Hello, world!")))}, fail: protoErr},
		confCase{id: "3.7", desc: "close with every RSV bit", steps: []confStep{send(cframe(true, 7, opClose, closeCode(1000, "")))}, fail: protoErr},
	)

	// 4: reserved opcodes.
	for i, op := range []byte{3, 4, 5, 6, 7} {
		add(reservedOpcase(fmt.Sprintf("4.1.%d", i+1), i, op))
	}
	for i, op := range []byte{11, 12, 13, 14, 15} {
		add(reservedOpcase(fmt.Sprintf("4.2.%d", i+1), i, op))
	}

	// 5: fragmentation.
	f1, f2 := frag(false, opText, "fragment1"), frag(true, opCont, "fragment2")
	pingP := ping([]byte("ping payload"))
	add(confCase{id: "5.1", desc: "ping in 2 fragments", steps: []confStep{send(cframe(false, 0, opPing, []byte("fragment1")), frag(true, opCont, "fragment2"))}, fail: protoErr},
		confCase{id: "5.2", desc: "pong in 2 fragments", steps: []confStep{send(cframe(false, 0, opPong, []byte("fragment1")), frag(true, opCont, "fragment2"))}, fail: protoErr},
		confCase{id: "5.3", desc: "text in 2 fragments", steps: []confStep{send(f1, f2)}, want: []confMsg{tmsg("fragment1fragment2")}},
		confCase{id: "5.4", desc: "as 5.3, 1 byte at a time", steps: []confStep{chunked(1, f1, f2)}, want: []confMsg{tmsg("fragment1fragment2")}},
		confCase{id: "5.5", desc: "as 5.3, frame by frame", steps: []confStep{send(f1), send(f2)}, want: []confMsg{tmsg("fragment1fragment2")}},
		confCase{id: "5.6", desc: "text in 2 fragments, a ping between", steps: []confStep{send(f1, pingP, f2)}, want: []confMsg{tmsg("fragment1fragment2")}, pongs: [][]byte{[]byte("ping payload")}},
		confCase{id: "5.7", desc: "as 5.6, 1 byte at a time", steps: []confStep{chunked(1, f1, pingP, f2)}, want: []confMsg{tmsg("fragment1fragment2")}, pongs: [][]byte{[]byte("ping payload")}},
		confCase{id: "5.8", desc: "as 5.6, frame by frame, the pong awaited", steps: []confStep{send(f1), send(pingP), after(0, 1, f2)}, want: []confMsg{tmsg("fragment1fragment2")}, pongs: [][]byte{[]byte("ping payload")}},
	)
	contFin := frag(true, opCont, "non-continuation payload")
	contMore := frag(false, opCont, "non-continuation payload")
	hello := text("Hello, world!")
	for i, bad := range [][]byte{contFin, contMore} {
		n := 9 + 3*i
		add(confCase{id: fmt.Sprintf("5.%d", n), desc: "continuation with nothing to continue, then text", steps: []confStep{send(bad, hello)}, fail: protoErr},
			confCase{id: fmt.Sprintf("5.%d", n+1), desc: "as above, 1 byte at a time", steps: []confStep{chunked(1, bad, hello)}, fail: protoErr},
			confCase{id: fmt.Sprintf("5.%d", n+2), desc: "as above, frame by frame", steps: []confStep{send(bad), send(hello)}, fail: protoErr})
	}
	add(confCase{id: "5.15", desc: "text in 2 fragments, then a continuation with nothing to continue", steps: []confStep{send(f1, f2), after(1, 0, frag(false, opCont, "fragment3"), frag(true, opText, "fragment4"))}, want: []confMsg{tmsg("fragment1fragment2")}, fail: protoErr},
		confCase{id: "5.16", desc: "2× (continuation, text !FIN, continuation FIN)", steps: []confStep{send(contMore, frag(false, opText, "fragment2"), frag(true, opCont, "fragment3"), contMore, frag(false, opText, "fragment2"), frag(true, opCont, "fragment3"))}, fail: protoErr},
		confCase{id: "5.17", desc: "2× (continuation FIN, text !FIN, continuation FIN)", steps: []confStep{send(contFin, frag(false, opText, "fragment2"), frag(true, opCont, "fragment3"), contFin, frag(false, opText, "fragment2"), frag(true, opCont, "fragment3"))}, fail: protoErr},
		confCase{id: "5.18", desc: "text in 2 fragments, both with the text opcode", steps: []confStep{send(f1, frag(true, opText, "fragment2"))}, fail: protoErr},
	)
	p1, p2 := ping([]byte("pongme 1!")), ping([]byte("pongme 2!"))
	frags5 := [][]byte{frag(false, opText, "fragment1"), frag(false, opCont, "fragment2"), frag(false, opCont, "fragment3"), frag(false, opCont, "fragment4"), frag(true, opCont, "fragment5")}
	want5 := []confMsg{tmsg("fragment1fragment2fragment3fragment4fragment5")}
	pongs5 := [][]byte{[]byte("pongme 1!"), []byte("pongme 2!")}
	add(confCase{id: "5.19", desc: "text in 5 fragments, pings between, the first pong awaited", steps: []confStep{send(frags5[0], frags5[1], p1), after(0, 1, frags5[2], frags5[3], p2, frags5[4])}, want: want5, pongs: pongs5},
		confCase{id: "5.20", desc: "as 5.19, frame by frame", steps: []confStep{send(frags5[0]), send(frags5[1]), send(p1), after(0, 1, frags5[2]), send(frags5[3]), send(p2), send(frags5[4])}, want: want5, pongs: pongs5},
	)

	// 6: UTF-8.
	add(confCase{id: "6.1.1", desc: "empty text", steps: []confStep{send(text(""))}, want: []confMsg{tmsg("")}},
		confCase{id: "6.1.2", desc: "empty text in 3 empty fragments", steps: []confStep{send(frag(false, opText, ""), frag(false, opCont, ""), frag(true, opCont, ""))}, want: []confMsg{tmsg("")}},
		confCase{id: "6.1.3", desc: "text in 3 fragments, first and last empty", steps: []confStep{send(frag(false, opText, ""), frag(false, opCont, "middle frame payload"), frag(true, opCont, ""))}, want: []confMsg{tmsg("middle frame payload")}},
	)
	hellos := "Hello-µ@ßöäüàá-UTF-8!!"
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	add(confCase{id: "6.2.1", desc: "valid UTF-8, one frame", steps: []confStep{send(text(hellos))}, want: []confMsg{tmsg(hellos)}},
		confCase{id: "6.2.2", desc: "valid UTF-8 in 2 fragments, split on a code point", steps: []confStep{send(frag(false, opText, hellos[:13]), frag(true, opCont, hellos[13:]))}, want: []confMsg{tmsg(hellos)}},
		confCase{id: "6.2.3", desc: "valid UTF-8, one byte per fragment (splits inside code points)", steps: []confStep{send(byteFragments(hellos)...)}, want: []confMsg{tmsg(hellos)}},
		confCase{id: "6.2.4", desc: "κόσμε, one byte per fragment", steps: []confStep{send(byteFragments(kosme)...)}, want: []confMsg{tmsg(kosme)}},
	)
	invalid := kosme + "\xed\xa0\x80edited"
	add(confCase{id: "6.3.1", desc: "invalid UTF-8 (a surrogate), one frame", steps: []confStep{send(text(invalid))}, fail: []int{1007}},
		confCase{id: "6.3.2", desc: "as 6.3.1, one byte per fragment", steps: []confStep{send(byteFragments(invalid)...)}, fail: []int{1007}},
		// Fail fast: the rest of the message is never sent; the server must
		// fail on the fragment (or the bytes) that make it invalid.
		confCase{id: "6.4.1", desc: "fail fast: valid fragment, then a fragment with an invalid sequence, no end", steps: []confStep{send(frag(false, opText, kosme)), send(frag(false, opCont, "\xf4\x90\x80\x80"))}, fail: []int{1007}},
		confCase{id: "6.4.2", desc: "fail fast: the invalid sequence starts at the end of one fragment", steps: []confStep{send(frag(false, opText, kosme+"\xf4")), send(frag(false, opCont, "\x90"))}, fail: []int{1007}},
		confCase{id: "6.4.3", desc: "fail fast inside one frame: its bytes up to the invalid sequence, no more", steps: []confStep{send(text(kosme + "\xf4\x90\x80\x80edited")[:6+len(kosme)+4])}, fail: []int{1007}},
		confCase{id: "6.4.4", desc: "as 6.4.3, the frame cut inside the invalid sequence", steps: []confStep{send(text(kosme + "\xf4\x90\x80\x80edited")[:6+len(kosme)+2])}, fail: []int{1007}},
	)
	for i, u := range utf8Cases() {
		id := u.id
		if id == "" {
			id = fmt.Sprintf("6.U.%d", i+1)
		}
		c := confCase{id: id, desc: u.desc, steps: []confStep{send(text(u.s))}}
		cf := confCase{id: id + "f", desc: u.desc + ", one byte per fragment", steps: []confStep{send(byteFragments(u.s)...)}}
		if u.valid {
			c.want, cf.want = []confMsg{tmsg(u.s)}, []confMsg{tmsg(u.s)}
		} else {
			c.fail, cf.fail = []int{1007}, []int{1007}
		}
		add(c, cf)
	}

	// 7: close handling and close codes.
	cl := closeFrame(closeCode(1000, ""))
	add(confCase{id: "7.1.1", desc: "text, then close", steps: []confStep{send(text("Hello World!")), after(1, 0, cl)}, want: []confMsg{tmsg("Hello World!")}, closed: true, replyCode: 1000},
		confCase{id: "7.1.2", desc: "close twice: the second ignored", steps: []confStep{send(cl, cl)}, closed: true, replyCode: 1000},
		confCase{id: "7.1.3", desc: "close, then ping: no pong", steps: []confStep{send(cl, ping([]byte("Hello World!")))}, closed: true, replyCode: 1000},
		confCase{id: "7.1.4", desc: "close, then text: no echo", steps: []confStep{send(cl, text("Hello World!"))}, closed: true, replyCode: 1000},
		confCase{id: "7.1.5", desc: "fragment, close, last fragment: no echo", steps: []confStep{send(frag(false, opText, "fragment1"), cl, frag(true, opCont, "fragment2"))}, closed: true, replyCode: 1000},
		confCase{id: "7.1.6", desc: "256 KiB text, close, ping: close answered, no pong", steps: []confStep{send(text(strings.Repeat("BAsd7&jh23", 26214)), cl, ping([]byte("Hello World!")))}, want: []confMsg{tmsg(strings.Repeat("BAsd7&jh23", 26214))}, lenient: true, closed: true, replyCode: 1000},
		confCase{id: "7.3.1", desc: "close, empty payload", steps: []confStep{send(closeFrame(nil))}, closed: true, replyCode: -1},
		confCase{id: "7.3.2", desc: "close, 1-byte payload", steps: []confStep{send(closeFrame([]byte{0x03}))}, fail: protoErr},
		confCase{id: "7.3.3", desc: "close 1000, no reason", steps: []confStep{send(cl)}, closed: true, replyCode: 1000},
		confCase{id: "7.3.4", desc: "close 1000 with a reason", steps: []confStep{send(closeFrame(closeCode(1000, "Hello World!")))}, closed: true, replyCode: 1000},
		confCase{id: "7.3.5", desc: "close 1000, 123-byte reason", steps: []confStep{send(closeFrame(closeCode(1000, strings.Repeat("*", 123))))}, closed: true, replyCode: 1000},
		confCase{id: "7.3.6", desc: "close 1000, 124-byte reason (payload 126)", steps: []confStep{send(closeFrame(closeCode(1000, strings.Repeat("*", 124))))}, fail: protoErr},
		confCase{id: "7.5.1", desc: "close reason not UTF-8", steps: []confStep{send(closeFrame(closeCode(1000, kosme+"\xed\xa0\x80edited")))}, fail: []int{1002, 1007}},
	)
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		add(confCase{id: fmt.Sprintf("7.7.%d", i+1), desc: fmt.Sprintf("close code %d: valid, answered", code), steps: []confStep{send(closeFrame(closeCode(code, "")))}, closed: true, replyCode: code})
	}
	for i, code := range []int{1012, 1013} {
		add(confCase{id: fmt.Sprintf("7.7.A%d", i+1), desc: fmt.Sprintf("close code %d (registered since RFC 6455): answered", code), steps: []confStep{send(closeFrame(closeCode(code, "")))}, closed: true, replyCode: code})
	}
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999} {
		add(confCase{id: fmt.Sprintf("7.9.%d", i+1), desc: fmt.Sprintf("close code %d: invalid", code), steps: []confStep{send(closeFrame(closeCode(code, "")))}, fail: protoErr})
	}
	add(confCase{id: "7.13.1", desc: "close code 5000: invalid", steps: []confStep{send(closeFrame(closeCode(5000, "")))}, fail: protoErr},
		confCase{id: "7.13.2", desc: "close code 65535: invalid", steps: []confStep{send(closeFrame(closeCode(65535, "")))}, fail: protoErr})

	// 9: limits — large messages, many fragments, many small writes, many
	// round trips; and max_message_size.
	for i, n := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20} {
		lazy(fmt.Sprintf("9.1.%d", i+1), func() confCase {
			p := fill(n, '*')
			return confCase{desc: fmt.Sprintf("text, %d bytes", n), steps: []confStep{send(cframe(true, 0, opText, p))}, want: []confMsg{tmsg(string(p))}}
		})
		lazy(fmt.Sprintf("9.2.%d", i+1), func() confCase {
			return confCase{desc: fmt.Sprintf("binary, %d bytes", n), steps: []confStep{send(binFrame(fill(n, 0xfe)))}, want: []confMsg{bmsg(fill(n, 0xfe))}}
		})
	}
	for i, fs := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20} {
		const n = 1 << 20
		lazy(fmt.Sprintf("9.3.%d", i+1), func() confCase {
			return confCase{desc: fmt.Sprintf("text, %d bytes in fragments of %d", n, fs), steps: []confStep{send(fragments(opText, fill(n, '*'), fs)...)}, want: []confMsg{tmsg(string(fill(n, '*')))}}
		})
		lazy(fmt.Sprintf("9.4.%d", i+1), func() confCase {
			return confCase{desc: fmt.Sprintf("binary, %d bytes in fragments of %d", n, fs), steps: []confStep{send(fragments(opBinary, fill(n, 0xfe), fs)...)}, want: []confMsg{bmsg(fill(n, 0xfe))}}
		})
	}
	for i, chop := range []int{64, 128, 256, 512, 1024, 2048} {
		const n = 1 << 20
		lazy(fmt.Sprintf("9.5.%d", i+1), func() confCase {
			return confCase{desc: fmt.Sprintf("text, %d bytes, written in pieces of %d", n, chop), steps: []confStep{chunked(chop, cframe(true, 0, opText, fill(n, '*')))}, want: []confMsg{tmsg(string(fill(n, '*')))}}
		})
		lazy(fmt.Sprintf("9.6.%d", i+1), func() confCase {
			return confCase{desc: fmt.Sprintf("binary, %d bytes, written in pieces of %d", n, chop), steps: []confStep{chunked(chop, binFrame(fill(n, 0xfe)))}, want: []confMsg{bmsg(fill(n, 0xfe))}}
		})
	}
	for i, n := range []int{0, 16, 64, 256, 1 << 10, 4 << 10} {
		lazy(fmt.Sprintf("9.7.%d", i+1), func() confCase { return roundTrips(opText, n) })
		lazy(fmt.Sprintf("9.8.%d", i+1), func() confCase { return roundTrips(opBinary, n) })
	}
	lazy("9.L.1", func() confCase {
		return confCase{desc: "text of max_message_size: echoed", steps: []confStep{send(cframe(true, 0, opText, fill(confMaxMessage, '*')))}, want: []confMsg{tmsg(string(fill(confMaxMessage, '*')))}}
	})
	lazy("9.L.2", func() confCase {
		return confCase{desc: "text of max_message_size + 1: fail 1009", steps: []confStep{send(cframe(true, 0, opText, fill(confMaxMessage+1, '*')))}, fail: []int{1009}}
	})
	lazy("9.L.3", func() confCase {
		quarter := fill(confMaxMessage/4, '*')
		return confCase{desc: "fragments adding up to max_message_size + 1: fail 1009", steps: []confStep{send(cframe(false, 0, opText, quarter), cframe(false, 0, opCont, quarter), cframe(false, 0, opCont, quarter), cframe(false, 0, opCont, quarter), cframe(true, 0, opCont, []byte("*")))}, fail: []int{1009}}
	})
	add(confCase{id: "9.L.4", desc: "a frame header announcing 1 GiB: fail 1009 before the payload", steps: []confStep{send([]byte{0x82, 0xff, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4})}, fail: []int{1009}})

	cs = append(cs, deflateCases()...)
	return cs
}

// reservedOpcase is Autobahn's 4.x.y for opcode op: case i (0-based) of
// its five variants.
func reservedOpcase(id string, i int, op byte) confCase {
	c := confCase{id: id, desc: fmt.Sprintf("reserved opcode %d", op), fail: protoErr}
	bad := cframe(true, 0, op, nil)
	if i%2 == 1 || i == 4 {
		bad = cframe(true, 0, op, []byte("reserved opcode payload"))
	}
	switch i {
	case 0, 1:
		c.steps = []confStep{send(bad)}
	case 2, 3:
		c.desc += ", after a text message, a ping behind it"
		c.steps = []confStep{send(text("Hello, world!")), after(1, 0, bad, ping(nil))}
		c.want = []confMsg{tmsg("Hello, world!")}
	case 4:
		c.desc += ", after a text message, a ping behind it, 1 byte at a time"
		c.steps = []confStep{send(text("Hello, world!")), {msgs: 1, b: cat(bad, ping(nil)), chunk: 1}}
		c.want = []confMsg{tmsg("Hello, world!")}
	}
	return c
}

// byteFragments is s as a text message of one fragment per byte.
func byteFragments(s string) [][]byte {
	if s == "" {
		return [][]byte{text("")}
	}
	var fs [][]byte
	for i := range len(s) {
		op := byte(opCont)
		if i == 0 {
			op = opText
		}
		fs = append(fs, cframe(i == len(s)-1, 0, op, []byte{s[i]}))
	}
	return fs
}

// fragments is p as a message of op in fragments of size n.
func fragments(op byte, p []byte, n int) [][]byte {
	var fs [][]byte
	for off := 0; off < len(p); off += n {
		o := byte(opCont)
		if off == 0 {
			o = op
		}
		end := min(off+n, len(p))
		fs = append(fs, cframe(end == len(p), 0, o, p[off:end]))
	}
	return fs
}

// roundTrips is Autobahn's 9.7/9.8: 1000 messages of n bytes, each sent
// once the previous one came back.
func roundTrips(op byte, n int) confCase {
	c := confCase{desc: fmt.Sprintf("1000 round trips of %d-byte %s messages", n, map[byte]string{opText: "text", opBinary: "binary"}[op])}
	p := fill(n, '*')
	for i := range 1000 {
		c.steps = append(c.steps, after(i, 0, cframe(true, 0, op, p)))
		c.want = append(c.want, confMsg{op, p})
	}
	return c
}

// utf8Case is one of Autobahn's 6.5–6.23 UTF-8 sequences (Markus Kuhn's
// UTF-8 decoder stress test).
type utf8Case struct {
	id, desc string
	s        string
	valid    bool
}

func utf8Cases() []utf8Case {
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	cs := []utf8Case{{id: "6.5.1", desc: "κόσμε", s: kosme, valid: true}}
	for i := 1; i <= len(kosme); i++ {
		p := kosme[:i]
		cs = append(cs, utf8Case{id: fmt.Sprintf("6.6.%d", i), desc: fmt.Sprintf("κόσμε, first %d bytes", i), s: p, valid: utf8.ValidString(p)})
	}
	seq := func(group string, valid bool, desc string, ss ...string) {
		for i, s := range ss {
			cs = append(cs, utf8Case{id: fmt.Sprintf("%s.%d", group, i+1), desc: desc, s: s, valid: valid})
		}
	}
	seq("6.7", true, "first sequence of its length", "\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80")
	seq("6.8", false, "5- and 6-byte sequences", "\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80")
	seq("6.9", true, "last sequence of its length", "\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf")
	seq("6.10", false, "past the last 4-byte sequence", "\xf7\xbf\xbf\xbf", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf")
	seq("6.11", true, "other boundaries", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf")
	cs = append(cs, utf8Case{id: "6.11.5", desc: "past U+10FFFF", s: "\xf4\x90\x80\x80"})
	seq("6.12", false, "unexpected continuation bytes", "\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\x80\xbf\x80\xbf", "\x80\xbf\x80\xbf\x80", "\x80\xbf\x80\xbf\x80\xbf", allBytes(0x80, 0xbf, ""))
	seq("6.13", false, "lonely start bytes, each followed by a space", allBytes(0xc0, 0xdf, " "), allBytes(0xe0, 0xef, " "), allBytes(0xf0, 0xf7, " "), allBytes(0xf8, 0xfb, " "), allBytes(0xfc, 0xfd, " "))
	seq("6.14", false, "sequences with their last byte missing", "\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80", "\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf")
	seq("6.15", false, "incomplete sequences concatenated", "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf")
	seq("6.16", false, "impossible bytes", "\xfe", "\xff", "\xfe\xfe\xff\xff")
	seq("6.17", false, "overlong '/'", "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf")
	seq("6.18", false, "maximum overlong sequences", "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf")
	seq("6.19", false, "overlong NUL", "\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80")
	seq("6.20", false, "single UTF-16 surrogates", "\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf")
	seq("6.21", false, "paired UTF-16 surrogates", "\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80", "\xed\xad\xbf\xed\xbf\xbf", "\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf")
	seq("6.22", true, "noncharacters (valid UTF-8)", "\xef\xbf\xbe", "\xef\xbf\xbf", "\xf0\x9f\xbf\xbe", "\xf0\x9f\xbf\xbf", "\xf4\x8f\xbf\xbe", "\xf4\x8f\xbf\xbf", "\xef\xb7\x90", "\xef\xb7\xaf")
	seq("6.23", true, "U+FFFD and neighbours", "\xef\xbf\xbd", "\xef\xbf\xbc", "\xef\xbf\xbd\xef\xbf\xbd", "a\xef\xbf\xbdb")
	return cs
}

// allBytes is every byte from lo to hi, each followed by sep.
func allBytes(lo, hi byte, sep string) string {
	var b strings.Builder
	for c := int(lo); c <= int(hi); c++ {
		b.WriteByte(byte(c))
		b.WriteString(sep)
	}
	return b.String()
}

// deflateCases are groups 12 and 13: permessage-deflate on /c-echo-z.
func deflateCases() []confCase {
	const offer = "permessage-deflate; client_no_context_takeover; client_max_window_bits"
	z := "/c-echo-z"
	var cs []confCase
	lazy := func(id string, build func() confCase) { cs = append(cs, confCase{id: id, build: build}) }
	chat := func(n int) []byte { // a typical JSON chat message, repeated to n bytes
		const m = `{"type":"say","room":"lobby","from":"user-4711","text":"hello everyone, how is it going?","ts":1718000000123}`
		return []byte(strings.Repeat(m, n/len(m)+1)[:n])
	}
	random := func(n int) []byte {
		rnd := rand.New(rand.NewPCG(uint64(n), 2))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	sizes := []int{16, 64, 256, 1 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10}
	groups := []struct {
		group    string
		op       byte
		payload  func(int) []byte
		compress bool // the client compresses
		desc     string
	}{
		{"12.1", opText, chat, true, "compressed text (JSON)"},
		{"12.2", opBinary, chat, true, "compressed binary (JSON bytes)"},
		{"12.3", opText, chat, false, "uncompressed text on a deflate connection"},
		{"12.4", opBinary, chat, false, "uncompressed binary on a deflate connection"},
		{"12.5", opBinary, random, true, "compressed random binary (incompressible)"},
	}
	for _, g := range groups {
		for i, n := range sizes {
			lazy(fmt.Sprintf("%s.%d", g.group, i+1), func() confCase {
				trips := 20 // Autobahn's 1000, cut to keep the suite in seconds
				if n >= 64<<10 {
					trips = 4
				}
				c := confCase{desc: fmt.Sprintf("%s, %d bytes, %d round trips", g.desc, n, trips), path: z, offer: offer, wantExt: true}
				for k := range trips {
					p := g.payload(n)
					f := cframe(true, 0, g.op, p)
					if g.compress {
						f = zframe(g.op, p)
					}
					c.steps = append(c.steps, after(k, 0, f))
					c.want = append(c.want, confMsg{g.op, p})
				}
				return c
			})
		}
	}
	// 13: negotiation offers, each followed by compressed round trips.
	offers := []string{
		"permessage-deflate",
		"permessage-deflate; client_no_context_takeover",
		"permessage-deflate; client_max_window_bits=8",
		"permessage-deflate; client_max_window_bits=15",
		"permessage-deflate; client_no_context_takeover; client_max_window_bits=8",
		"permessage-deflate; client_no_context_takeover; client_max_window_bits=15",
		"permessage-deflate; client_no_context_takeover; client_max_window_bits=8, permessage-deflate; client_no_context_takeover, permessage-deflate",
		`permessage-deflate; server_no_context_takeover; client_max_window_bits="10"`,
		"permessage-deflate; server_max_window_bits=10, permessage-deflate",
	}
	for i, o := range offers {
		c := confCase{id: fmt.Sprintf("13.%d", i+1), desc: "offer " + o, path: z, offer: o, wantExt: true}
		for k, n := range []int{16, 64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10} {
			p := chat(n)
			c.steps = append(c.steps, after(k, 0, zframe(opText, p)))
			c.want = append(c.want, tmsg(string(p)))
		}
		cs = append(cs, c)
	}
	declined := []string{
		"permessage-deflate; server_max_window_bits=10",
		"permessage-deflate; client_max_window_bits=16",
		"permessage-deflate; client_max_window_bits=08",
		"permessage-deflate; mystery_param",
		"permessage-deflate; client_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; server_no_context_takeover=1",
		"x-webkit-deflate-frame",
	}
	for i, o := range declined {
		cs = append(cs, confCase{id: fmt.Sprintf("13.D.%d", i+1), desc: "offer declined: " + o, path: z, offer: o,
			steps: []confStep{send(text("uncompressed"))}, want: []confMsg{tmsg("uncompressed")}})
	}
	cs = append(cs,
		confCase{id: "13.D.8", desc: "deflate off for the module: offer declined, RSV1 fails", offer: offer, steps: []confStep{send(zframe(opText, chat(256)))}, fail: protoErr},
		confCase{id: "12.A.1", desc: "compressed message in 3 fragments (RSV1 on the first only)", path: z, offer: offer, wantExt: true, steps: []confStep{send(zfragments(opText, chat(4<<10), 3)...)}, want: []confMsg{tmsg(string(chat(4 << 10)))}},
		confCase{id: "12.A.2", desc: "RSV1 on a continuation frame", path: z, offer: offer, wantExt: true, steps: []confStep{send(frag(false, opText, "fragment1"), cframe(true, 4, opCont, []byte("x")))}, fail: protoErr},
		confCase{id: "12.A.3", desc: "RSV1 on a ping", path: z, offer: offer, wantExt: true, steps: []confStep{send(cframe(true, 4, opPing, nil))}, fail: protoErr},
		confCase{id: "12.A.4", desc: "RSV1 with data that does not inflate: fail 1007", path: z, offer: offer, wantExt: true, steps: []confStep{send(cframe(true, 4, opText, []byte{0xff, 0xff, 0xff, 0xff, 0xff}))}, fail: []int{1007}},
		confCase{id: "12.A.5", desc: "compressed text that inflates to invalid UTF-8: fail 1007", path: z, offer: offer, wantExt: true, steps: []confStep{send(zframe(opText, []byte(strings.Repeat("ab", 100)+"\xff")))}, fail: []int{1007}},
	)
	lazy("12.A.6", func() confCase {
		return confCase{desc: "decompression bomb: 8 MiB of zeros in a few KiB, max_message_size 4 MiB: fail 1009", path: z, offer: offer, wantExt: true, steps: []confStep{send(zframe(opBinary, make([]byte, 2*confMaxMessage)))}, fail: []int{1009}}
	})
	lazy("12.A.7", func() confCase {
		return confCase{desc: "compressed message inflating to max_message_size exactly: echoed", path: z, offer: offer, wantExt: true, steps: []confStep{send(zframe(opBinary, make([]byte, confMaxMessage)))}, want: []confMsg{bmsg(make([]byte, confMaxMessage))}}
	})
	return cs
}

// zfragments is p compressed, as a message of op in n fragments: RSV1 on
// the first only (RFC 7692 §6.1).
func zfragments(op byte, p []byte, n int) [][]byte {
	whole := zframe(op, p)
	// Take the compressed payload back out of the frame (unmask it).
	hdr := 2
	switch whole[1] & 0x7f {
	case 126:
		hdr += 2
	case 127:
		hdr += 8
	}
	key := whole[hdr : hdr+4]
	z := bytes.Clone(whole[hdr+4:])
	for i := range z {
		z[i] ^= key[i%4]
	}
	size := (len(z) + n - 1) / n
	var fs [][]byte
	for off := 0; off < len(z); off += size {
		end := min(off+size, len(z))
		o, rsv := byte(opCont), byte(0)
		if off == 0 {
			o, rsv = op, 4
		}
		fs = append(fs, cframe(end == len(z), rsv, o, z[off:end]))
	}
	return fs
}
