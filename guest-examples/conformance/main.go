// Command conformance is the Go build of the conformance handler
// (docs/SDK-CONFORMANCE.md): every text message is a command naming a host
// function and its arguments, the handler makes the call through the Go
// SDK and answers the result to the sender. The C, Rust and AssemblyScript
// builds speak the same protocol; server/conformance_sdk_test.go drives
// them all through the same scenarios and compares what they answer.
//
//	→ 7 kv_set greeting h%C3%A9llo 0
//	← 7 ok
//	→ 8 kv_get greeting
//	← 8 ok h%C3%A9llo
//	→ 9 send_to_client 00000000000000000000 hi 0
//	← 9 err 3
//
// It is also an example of every part of the SDK: events, sends, uids,
// groups, sessions, the key-value store, tasks, timers and Closing.
package main

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/wasmgate/wasmgate/guest-examples/gateway"
)

// config is the module config on_start received (per instance: every
// instance gets the same one).
var config string

func init() {
	gateway.OnStart(func(c string) { config = c })
	gateway.OnHandshake(handshake)
	gateway.OnConnect(func(c gateway.Client) {
		// What on_handshake saw, handed over through the key-value store:
		// the two events may run on different instances.
		seen, err := gateway.KV.Get("hs:" + c.ID)
		if err != nil {
			seen = []byte("-")
		}
		gateway.KV.Delete("hs:" + c.ID)
		c.SendString("hello " + c.ID + " " + string(seen))
	})
	gateway.OnMessage(message)
	gateway.OnClose(func(c gateway.Client) {
		line := "closed " + c.ID
		if st, err := gateway.Closing(); err != nil {
			line += " err " + errnoText(err)
		} else {
			line += " " + enc([]byte(st.Uid)) + " " + enc(st.Session) + " " + encList(st.Groups)
		}
		watch(line)
	})
	gateway.OnTask(func(id int64, payload []byte) ([]byte, error) {
		mode, data, _ := strings.Cut(string(payload), " ")
		switch mode {
		case "ok":
			return []byte(data), nil
		case "fail":
			return nil, errors.New(data) // the result is the error's text
		case "hang": // until task_timeout stops it: TaskCrashed
			for {
				gateway.Now()
			}
		}
		return nil, errors.New("unknown mode " + mode)
	})
	gateway.OnFinish(func(id int64, result []byte, status gateway.TaskStatus) {
		watch("finish " + strconv.FormatInt(id, 10) + " " + strconv.Itoa(int(status)) + " " + enc(result))
	})
	gateway.OnTimer(func(id int64, payload []byte) {
		watch("timer " + strconv.FormatInt(id, 10) + " " + enc(payload))
	})
}

func main() {}

// watch sends an event line to the "watch" group: on_close, on_finish and
// on_timer belong to no client that could be answered.
func watch(line string) { gateway.SendToOneGroup("watch", []byte(line), nil) }

// handshake refuses with the status in ?refuse=N, and otherwise keeps what
// it saw for on_connect.
func handshake(h gateway.Handshake) int {
	if s, ok := h.LookupQuery("refuse"); ok {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	seen := enc([]byte(h.Method)) + " " + enc([]byte(h.Path)) + " " + enc([]byte(h.Query)) + " " + enc([]byte(h.Header("x-conf")))
	gateway.KV.Set("hs:"+h.ClientID, []byte(seen), time.Minute)
	return 0
}

// message runs one command; a binary message is echoed as binary.
func message(c gateway.Client, msg []byte) {
	if c.Binary() {
		c.Reply(msg)
		return
	}
	f := strings.Split(string(msg), " ")
	reply := f[0] + " " + run(c, f[1:])
	c.SendString(reply)
}

// errBad marks a request the handler cannot parse: it answers "bad".
var errBad = errors.New("bad request")

// run executes cmd (f[0]) with its arguments and returns the answer
// without the tag: "ok" and the values, "err N", or "bad".
func run(c gateway.Client, f []string) (answer string) {
	if len(f) == 0 {
		return "bad"
	}
	a := args{f: f[1:]}
	var vals []string
	var err error
	switch f[0] {
	case "config":
		vals = []string{enc([]byte(config))}
	case "send_to_client":
		id, msg, flags := a.str(), a.bytes(), a.flags()
		err = a.call(func() error { return gateway.SendToClientFlags(id, msg, flags) })
	case "send_to_all":
		msg, flags, only, exclude := a.bytes(), a.flags(), a.list(), a.list()
		err = a.count(&vals, func() (int, error) { return gateway.SendToAllFlags(msg, flags, only, exclude) })
	case "send_to_uid":
		uids, msg, flags := a.list(), a.bytes(), a.flags()
		err = a.count(&vals, func() (int, error) { return gateway.SendToUidFlags(uids, msg, flags) })
	case "send_to_group":
		groups, msg, flags, exclude := a.list(), a.bytes(), a.flags(), a.list()
		err = a.count(&vals, func() (int, error) { return gateway.SendToGroupFlags(groups, msg, flags, exclude) })
	case "close_client":
		id, msg, flags := a.str(), a.bytes(), a.flags()
		err = a.call(func() error { return gateway.CloseClientFlags(id, msg, flags) })
	case "is_online":
		id := a.str()
		err = a.flag(&vals, func() (bool, error) { return gateway.IsOnline(id) })
	case "bind_uid":
		id, uid := a.str(), a.str()
		err = a.call(func() error { return gateway.BindUid(id, uid) })
	case "unbind_uid":
		id, uid := a.str(), a.str()
		err = a.call(func() error { return gateway.UnbindUid(id, uid) })
	case "is_uid_online":
		uid := a.str()
		err = a.flag(&vals, func() (bool, error) { return gateway.IsUidOnline(uid) })
	case "get_client_id_by_uid":
		uid := a.str()
		err = a.strs(&vals, func() ([]string, error) { return gateway.GetClientIdByUid(uid) })
	case "get_uid_by_client_id":
		id := a.str()
		err = a.data(&vals, func() ([]byte, error) { s, err := gateway.GetUidByClientId(id); return []byte(s), err })
	case "get_all_client_id_count":
		err = a.count(&vals, gateway.GetAllClientIdCount)
	case "get_all_client_id_list":
		err = a.strs(&vals, gateway.GetAllClientIdList)
	case "get_all_uid_list":
		err = a.strs(&vals, gateway.GetAllUidList)
	case "get_all_uid_count":
		err = a.count(&vals, gateway.GetAllUidCount)
	case "join_group":
		id, g := a.str(), a.str()
		err = a.call(func() error { return gateway.JoinGroup(id, g) })
	case "leave_group":
		id, g := a.str(), a.str()
		err = a.call(func() error { return gateway.LeaveGroup(id, g) })
	case "ungroup":
		g := a.str()
		err = a.call(func() error { return gateway.Ungroup(g) })
	case "get_client_id_count_by_group":
		g := a.str()
		err = a.count(&vals, func() (int, error) { return gateway.GetClientIdCountByGroup(g) })
	case "get_client_id_list_by_group":
		g := a.str()
		err = a.strs(&vals, func() ([]string, error) { return gateway.GetClientIdListByGroup(g) })
	case "get_uid_list_by_group":
		g := a.str()
		err = a.strs(&vals, func() ([]string, error) { return gateway.GetUidListByGroup(g) })
	case "get_uid_count_by_group":
		g := a.str()
		err = a.count(&vals, func() (int, error) { return gateway.GetUidCountByGroup(g) })
	case "get_all_group_id_list":
		err = a.strs(&vals, gateway.GetAllGroupIdList)
	case "set_session":
		id, js := a.str(), a.bytes()
		err = a.call(func() error { return gateway.SetSession(id, js) })
	case "update_session":
		id, js := a.str(), a.bytes()
		err = a.call(func() error { return gateway.UpdateSession(id, js) })
	case "get_session":
		id := a.str()
		err = a.data(&vals, func() ([]byte, error) { return gateway.GetSession(id) })
	case "closing_state": // unsupported outside on_close
		err = a.call(func() error {
			st, err := gateway.Closing()
			vals = []string{enc([]byte(st.Uid)), enc(st.Session), encList(st.Groups)}
			return err
		})
	case "log":
		level, msg := a.int(), a.str()
		err = a.call(func() error { return gateway.Log(gateway.Level(level), msg) })
	case "now":
		err = a.call(func() error { vals = []string{strconv.FormatInt(gateway.Now().UnixNano(), 10)}; return nil })
	case "kv_get":
		k := a.str()
		err = a.data(&vals, func() ([]byte, error) { return gateway.KV.Get(k) })
	case "kv_set":
		k, v, ttl := a.str(), a.bytes(), a.int()
		err = a.call(func() error { return gateway.KV.Set(k, v, ms(ttl)) })
	case "kv_delete":
		k := a.str()
		err = a.flag(&vals, func() (bool, error) { return gateway.KV.Delete(k) })
	case "kv_incr":
		k, delta, ttl := a.str(), a.int(), a.int()
		err = a.call(func() error {
			n, err := gateway.KV.Incr(k, delta, ms(ttl))
			vals = []string{strconv.FormatInt(n, 10)}
			return err
		})
	case "kv_cas":
		k, old, v, ttl, absent := a.str(), a.bytes(), a.bytes(), a.int(), a.int()
		err = a.flag(&vals, func() (bool, error) {
			if absent == 1 {
				return gateway.KV.SetIfAbsent(k, v, ms(ttl))
			}
			return gateway.KV.CompareAndSwap(k, old, v, ms(ttl))
		})
	case "task":
		p := a.bytes()
		err = a.id(&vals, func() (int64, error) { return gateway.Task(p) })
	case "task_result": // unsupported outside on_task
		r := a.bytes()
		err = a.call(func() error { return rawTaskResult(r) })
	case "set_timer":
		delay, p := a.int(), a.bytes()
		err = a.id(&vals, func() (int64, error) { return gateway.SetTimer(ms(delay), p) })
	case "clear_timer":
		id := a.int()
		err = a.flag(&vals, func() (bool, error) { return gateway.ClearTimer(id) })
	default:
		return "bad"
	}
	if errors.Is(err, errBad) {
		return "bad"
	}
	if err != nil {
		return "err " + errnoText(err)
	}
	return strings.Join(append([]string{"ok"}, vals...), " ")
}

// ms is a TTL or delay in milliseconds as a Duration (negative stays
// negative: the SDK answers ErrnoInvalid, as the host would).
func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// errnoText is the ABI code of a host error.
func errnoText(err error) string {
	var e gateway.Errno
	if errors.As(err, &e) {
		return strconv.Itoa(int(e))
	}
	return "?"
}

// rawTaskResult calls task_result directly: the SDK hands OnTask's return
// value to it and has no exported wrapper, and the protocol checks that the
// host refuses it outside on_task.
func rawTaskResult(r []byte) error {
	var p unsafe.Pointer
	if len(r) > 0 {
		p = unsafe.Pointer(unsafe.SliceData(r))
	}
	if n := hostTaskResult(p, uint32(len(r))); n < 0 {
		return gateway.Errno(-n)
	}
	return nil
}

// args reads a command's arguments in order; the first problem (a
// missing, extra or malformed argument) makes the command answer "bad".
type args struct {
	f   []string
	bad bool
}

func (a *args) next() string {
	if len(a.f) == 0 {
		a.bad = true
		return ""
	}
	s := a.f[0]
	a.f = a.f[1:]
	return s
}

func (a *args) bytes() []byte {
	b, ok := dec(a.next())
	if !ok {
		a.bad = true
	}
	return b
}

func (a *args) str() string { return string(a.bytes()) }

func (a *args) int() int64 {
	n, err := strconv.ParseInt(a.next(), 10, 64)
	if err != nil {
		a.bad = true
	}
	return n
}

func (a *args) flags() gateway.Flags { return gateway.Flags(uint32(a.int())) }

func (a *args) list() []string {
	s := a.next()
	if s == "-" {
		return []string{}
	}
	var l []string
	for _, e := range strings.Split(s, ",") {
		b, ok := dec(e)
		if !ok {
			a.bad = true
		}
		l = append(l, string(b))
	}
	return l
}

// call makes the host call once every argument has been read and checked.
func (a *args) call(f func() error) error {
	if a.bad || len(a.f) > 0 {
		return errBad
	}
	return f()
}

func (a *args) count(vals *[]string, f func() (int, error)) error {
	return a.call(func() error { n, err := f(); *vals = []string{strconv.Itoa(n)}; return err })
}

func (a *args) id(vals *[]string, f func() (int64, error)) error {
	return a.call(func() error { n, err := f(); *vals = []string{strconv.FormatInt(n, 10)}; return err })
}

func (a *args) flag(vals *[]string, f func() (bool, error)) error {
	return a.call(func() error {
		b, err := f()
		*vals = []string{"0"}
		if b {
			*vals = []string{"1"}
		}
		return err
	})
}

func (a *args) data(vals *[]string, f func() ([]byte, error)) error {
	return a.call(func() error { b, err := f(); *vals = []string{enc(b)}; return err })
}

func (a *args) strs(vals *[]string, f func() ([]string, error)) error {
	return a.call(func() error { l, err := f(); *vals = []string{encList(l)}; return err })
}

// dec decodes an argument: "-" is empty, "*N" is N bytes of 'x', anything
// else is percent-decoded.
func dec(s string) ([]byte, bool) {
	switch {
	case s == "-":
		return []byte{}, true
	case strings.HasPrefix(s, "*"):
		n, err := strconv.Atoi(s[1:])
		if err != nil || n < 0 {
			return nil, false
		}
		return []byte(strings.Repeat("x", n)), true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return nil, false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return nil, false
		}
		b = append(b, byte(v))
		i += 2
	}
	return b, true
}

// enc encodes a value: "-" if empty, else the bytes with every byte
// outside '!'..'~', and '%', ',' and '-', as %XX (upper-case hex).
func enc(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	const hex = "0123456789ABCDEF"
	var s strings.Builder
	for _, c := range b {
		if c < '!' || c > '~' || c == '%' || c == ',' || c == '-' {
			s.WriteByte('%')
			s.WriteByte(hex[c>>4])
			s.WriteByte(hex[c&15])
		} else {
			s.WriteByte(c)
		}
	}
	return s.String()
}

// encList encodes a list: "-" if empty, else its entries joined by ','.
func encList(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	e := make([]string, len(l))
	for i, s := range l {
		e[i] = enc([]byte(s))
	}
	return strings.Join(e, ",")
}
