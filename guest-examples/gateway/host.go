package gateway

import (
	"runtime"
	"time"
	"unsafe"
)

// bytesPtr and strPtr return the address of b's or s's data, or nil when it is
// empty (the host accepts nil with length 0).
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

func strPtr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

// listbuf is reused to encode list arguments; an instance runs one event at a
// time and host functions never call back into the guest, so one buffer is
// enough.
var listbuf []byte

// encodeLists encodes a and b back to back in listbuf and returns both.
func encodeLists(a, b []string) ([]byte, []byte) {
	listbuf = appendList(listbuf[:0], a)
	n := len(listbuf)
	listbuf = appendList(listbuf, b)
	return listbuf[:n:n], listbuf[n:]
}

// outbuf receives variable-size results; see readOut.
var outbuf []byte

const (
	outbufInitial = 1024
	outbufKeep    = 1 << 20 // larger buffers are dropped after use
	maxOutRetries = 16
)

// readOut calls a host function taking (out_ptr, out_cap) with outbuf,
// growing it and calling again while the result does not fit (the data may
// change between calls). The returned slice aliases outbuf: copy it before
// the next call.
func readOut(call func(p unsafe.Pointer, n uint32) int32) ([]byte, error) {
	if len(outbuf) == 0 {
		outbuf = make([]byte, outbufInitial)
	}
	for i := 0; i < maxOutRetries; i++ {
		r := call(unsafe.Pointer(unsafe.SliceData(outbuf)), uint32(len(outbuf)))
		runtime.KeepAlive(outbuf)
		if r < 0 {
			return nil, Errno(-r)
		}
		if int(r) <= len(outbuf) {
			return outbuf[:r], nil
		}
		outbuf = make([]byte, int(r)+int(r)/4)
	}
	return nil, ErrnoInternal
}

// releaseOut drops an oversized outbuf once its contents have been copied.
func releaseOut() {
	if len(outbuf) > outbufKeep {
		outbuf = nil
	}
}

// readString returns a variable-size result as a string.
func readString(call func(p unsafe.Pointer, n uint32) int32) (string, error) {
	b, err := readOut(call)
	if err != nil {
		return "", err
	}
	s := string(b)
	releaseOut()
	return s, nil
}

// readBytes returns a variable-size result as a new byte slice.
func readBytes(call func(p unsafe.Pointer, n uint32) int32) ([]byte, error) {
	b, err := readOut(call)
	if err != nil {
		return nil, err
	}
	c := make([]byte, len(b))
	copy(c, b)
	releaseOut()
	return c, nil
}

// readList returns a variable-size result as a decoded list.
func readList(call func(p unsafe.Pointer, n uint32) int32) ([]string, error) {
	b, err := readOut(call)
	if err != nil {
		return nil, err
	}
	l, ok := decodeList(b)
	releaseOut()
	if !ok {
		return nil, ErrnoInternal
	}
	return l, nil
}

// Sending (ABI.md §5.1). The send functions return how many clients' queues
// accepted the message.

// SendToClient sends msg to the client id as a text frame; msg must be valid
// UTF-8.
func SendToClient(id string, msg []byte) error {
	return SendToClientFlags(id, msg, 0)
}

// SendBinaryToClient sends msg to the client id as a binary frame.
func SendBinaryToClient(id string, msg []byte) error {
	return SendToClientFlags(id, msg, FlagBinary)
}

// SendToClientFlags sends msg to the client id, as a binary frame if flags
// has FlagBinary.
func SendToClientFlags(id string, msg []byte, flags Flags) error {
	r := hostSendToClient(strPtr(id), uint32(len(id)), bytesPtr(msg), uint32(len(msg)), uint32(flags))
	runtime.KeepAlive(id)
	runtime.KeepAlive(msg)
	return check(r)
}

// SendToAll sends msg as text to every client but those in exclude, or, if
// only is not empty, to the clients in only but not in exclude. Like
// GatewayWorker, an empty only means everyone; see SendToAllOnly.
func SendToAll(msg []byte, only, exclude []string) (int, error) {
	var f Flags
	if len(only) > 0 {
		f = FlagOnly
	}
	return SendToAllFlags(msg, f, only, exclude)
}

// SendToAllOnly sends msg as text to the clients in only but not in exclude;
// an empty only sends to no one.
func SendToAllOnly(msg []byte, only, exclude []string) (int, error) {
	return SendToAllFlags(msg, FlagOnly, only, exclude)
}

// SendToAllFlags is send_to_all: it sends msg to every client but those in
// exclude or, if flags has FlagOnly, only to the clients in only but not in
// exclude. FlagBinary sends a binary frame.
func SendToAllFlags(msg []byte, flags Flags, only, exclude []string) (int, error) {
	o, e := encodeLists(only, exclude)
	r := hostSendToAll(bytesPtr(msg), uint32(len(msg)), uint32(flags),
		bytesPtr(o), uint32(len(o)), bytesPtr(e), uint32(len(e)))
	runtime.KeepAlive(msg)
	runtime.KeepAlive(listbuf)
	return count(r)
}

// SendToUid sends msg as text to every client bound to one of uids.
func SendToUid(uids []string, msg []byte) (int, error) {
	return SendToUidFlags(uids, msg, 0)
}

// SendToOneUid sends msg as text to every client bound to uid.
func SendToOneUid(uid string, msg []byte) (int, error) {
	return SendToUidFlags([]string{uid}, msg, 0)
}

// SendToUidFlags sends msg to every client bound to one of uids, as a binary
// frame if flags has FlagBinary.
func SendToUidFlags(uids []string, msg []byte, flags Flags) (int, error) {
	u, _ := encodeLists(uids, nil)
	r := hostSendToUid(bytesPtr(u), uint32(len(u)), bytesPtr(msg), uint32(len(msg)), uint32(flags))
	runtime.KeepAlive(msg)
	runtime.KeepAlive(listbuf)
	return count(r)
}

// SendToGroup sends msg as text to the members of groups, except the clients
// in exclude; a client in several of the groups receives it once.
func SendToGroup(groups []string, msg []byte, exclude []string) (int, error) {
	return SendToGroupFlags(groups, msg, 0, exclude)
}

// SendToOneGroup sends msg as text to the members of group, except the
// clients in exclude.
func SendToOneGroup(group string, msg []byte, exclude []string) (int, error) {
	return SendToGroupFlags([]string{group}, msg, 0, exclude)
}

// SendToGroupFlags sends msg to the members of groups, except the clients in
// exclude, as a binary frame if flags has FlagBinary.
func SendToGroupFlags(groups []string, msg []byte, flags Flags, exclude []string) (int, error) {
	g, e := encodeLists(groups, exclude)
	r := hostSendToGroup(bytesPtr(g), uint32(len(g)), bytesPtr(msg), uint32(len(msg)), uint32(flags),
		bytesPtr(e), uint32(len(e)))
	runtime.KeepAlive(msg)
	runtime.KeepAlive(listbuf)
	return count(r)
}

// CloseClient closes the client id normally, first sending final as a text
// frame if it is not empty.
func CloseClient(id string, final []byte) error {
	return CloseClientFlags(id, final, 0)
}

// CloseClientFlags closes the client id, first sending final (as a binary
// frame if flags has FlagBinary) if it is not empty. The close is normal
// (1000) unless flags carries a code (CloseCode).
func CloseClientFlags(id string, final []byte, flags Flags) error {
	r := hostCloseClient(strPtr(id), uint32(len(id)), bytesPtr(final), uint32(len(final)), uint32(flags))
	runtime.KeepAlive(id)
	runtime.KeepAlive(final)
	return check(r)
}

// Clients and uids (ABI.md §5.2).

// IsOnline reports whether the client id is connected.
func IsOnline(id string) (bool, error) {
	r := hostIsOnline(strPtr(id), uint32(len(id)))
	runtime.KeepAlive(id)
	return flag(r)
}

// BindUid binds the client id to uid, replacing its previous uid; a uid may
// have many clients.
func BindUid(id, uid string) error {
	r := hostBindUid(strPtr(id), uint32(len(id)), strPtr(uid), uint32(len(uid)))
	runtime.KeepAlive(id)
	runtime.KeepAlive(uid)
	return check(r)
}

// UnbindUid removes the binding of the client id to uid; it has no effect if
// the client is bound to another uid.
func UnbindUid(id, uid string) error {
	r := hostUnbindUid(strPtr(id), uint32(len(id)), strPtr(uid), uint32(len(uid)))
	runtime.KeepAlive(id)
	runtime.KeepAlive(uid)
	return check(r)
}

// IsUidOnline reports whether any connected client is bound to uid.
func IsUidOnline(uid string) (bool, error) {
	r := hostIsUidOnline(strPtr(uid), uint32(len(uid)))
	runtime.KeepAlive(uid)
	return flag(r)
}

// GetClientIdByUid returns the ids of the clients bound to uid.
func GetClientIdByUid(uid string) ([]string, error) {
	l, err := readList(func(p unsafe.Pointer, n uint32) int32 {
		return hostGetClientIdByUid(strPtr(uid), uint32(len(uid)), p, n)
	})
	runtime.KeepAlive(uid)
	return l, err
}

// GetUidByClientId returns the uid the client id is bound to, or "" if none.
func GetUidByClientId(id string) (string, error) {
	s, err := readString(func(p unsafe.Pointer, n uint32) int32 {
		return hostGetUidByClientId(strPtr(id), uint32(len(id)), p, n)
	})
	runtime.KeepAlive(id)
	return s, err
}

// GetAllClientIdCount returns the number of connected clients.
func GetAllClientIdCount() (int, error) { return count(hostGetAllClientIdCount()) }

// GetAllClientIdList returns the ids of all connected clients.
func GetAllClientIdList() ([]string, error) {
	return readList(func(p unsafe.Pointer, n uint32) int32 { return hostGetAllClientIdList(p, n) })
}

// GetAllUidList returns every uid bound to a connected client.
func GetAllUidList() ([]string, error) {
	return readList(func(p unsafe.Pointer, n uint32) int32 { return hostGetAllUidList(p, n) })
}

// GetAllUidCount returns the number of uids bound to connected clients.
func GetAllUidCount() (int, error) { return count(hostGetAllUidCount()) }

// Groups (ABI.md §5.3).

// JoinGroup adds the client id to group.
func JoinGroup(id, group string) error {
	r := hostJoinGroup(strPtr(id), uint32(len(id)), strPtr(group), uint32(len(group)))
	runtime.KeepAlive(id)
	runtime.KeepAlive(group)
	return check(r)
}

// LeaveGroup removes the client id from group.
func LeaveGroup(id, group string) error {
	r := hostLeaveGroup(strPtr(id), uint32(len(id)), strPtr(group), uint32(len(group)))
	runtime.KeepAlive(id)
	runtime.KeepAlive(group)
	return check(r)
}

// Ungroup removes every member from group.
func Ungroup(group string) error {
	r := hostUngroup(strPtr(group), uint32(len(group)))
	runtime.KeepAlive(group)
	return check(r)
}

// GetClientIdCountByGroup returns the number of clients in group.
func GetClientIdCountByGroup(group string) (int, error) {
	r := hostGetClientIdCountByGroup(strPtr(group), uint32(len(group)))
	runtime.KeepAlive(group)
	return count(r)
}

// GetClientIdListByGroup returns the ids of the clients in group.
func GetClientIdListByGroup(group string) ([]string, error) {
	l, err := readList(func(p unsafe.Pointer, n uint32) int32 {
		return hostGetClientIdListByGroup(strPtr(group), uint32(len(group)), p, n)
	})
	runtime.KeepAlive(group)
	return l, err
}

// GetUidListByGroup returns the distinct uids of the clients in group.
func GetUidListByGroup(group string) ([]string, error) {
	l, err := readList(func(p unsafe.Pointer, n uint32) int32 {
		return hostGetUidListByGroup(strPtr(group), uint32(len(group)), p, n)
	})
	runtime.KeepAlive(group)
	return l, err
}

// GetUidCountByGroup returns the number of distinct uids in group.
func GetUidCountByGroup(group string) (int, error) {
	r := hostGetUidCountByGroup(strPtr(group), uint32(len(group)))
	runtime.KeepAlive(group)
	return count(r)
}

// GetAllGroupIdList returns every group that has at least one member.
func GetAllGroupIdList() ([]string, error) {
	return readList(func(p unsafe.Pointer, n uint32) int32 { return hostGetAllGroupIdList(p, n) })
}

// Sessions (ABI.md §5.4). A session is a JSON object kept by the host per
// client until it disconnects.

// SetSession replaces the session of the client id with json, which must be
// a JSON object.
func SetSession(id string, json []byte) error {
	r := hostSetSession(strPtr(id), uint32(len(id)), bytesPtr(json), uint32(len(json)))
	runtime.KeepAlive(id)
	runtime.KeepAlive(json)
	return check(r)
}

// UpdateSession merges the JSON object json into the session of the client
// id, recursively for nested objects (PHP's array_replace_recursive).
func UpdateSession(id string, json []byte) error {
	r := hostUpdateSession(strPtr(id), uint32(len(id)), bytesPtr(json), uint32(len(json)))
	runtime.KeepAlive(id)
	runtime.KeepAlive(json)
	return check(r)
}

// GetSession returns the session of the client id as a JSON object, "{}" if
// it has none.
func GetSession(id string) ([]byte, error) {
	b, err := readBytes(func(p unsafe.Pointer, n uint32) int32 {
		return hostGetSession(strPtr(id), uint32(len(id)), p, n)
	})
	runtime.KeepAlive(id)
	return b, err
}

// Utilities (ABI.md §5.5).

// Level is the severity of a Log record.
type Level int32

// Log levels.
const (
	// LevelDebug is for detail useful only when debugging.
	LevelDebug Level = 0
	// LevelInfo is for normal events.
	LevelInfo Level = 1
	// LevelWarn is for unexpected but handled conditions.
	LevelWarn Level = 2
	// LevelError is for failures.
	LevelError Level = 3
)

// Log writes msg to the server log at level, tagged with the module name.
func Log(level Level, msg string) error {
	r := hostLog(int32(level), strPtr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
	return check(r)
}

// Debug logs msg at LevelDebug.
func Debug(msg string) { Log(LevelDebug, msg) }

// Info logs msg at LevelInfo.
func Info(msg string) { Log(LevelInfo, msg) }

// Warn logs msg at LevelWarn.
func Warn(msg string) { Log(LevelWarn, msg) }

// Error logs msg at LevelError.
func Error(msg string) { Log(LevelError, msg) }

// Now returns the host's wall-clock time.
func Now() time.Time { return time.Unix(0, hostNow()) }
