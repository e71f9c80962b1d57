// Command chat is a wasmgate handler for a JSON chat with rooms. Every
// message is a JSON object with a "type":
//
//	{"type":"login","uid":"u"}           bind uid      → {"type":"login","ok":true,"uid":"u"}
//	{"type":"join","room":"r"}           join group r  → {"type":"joined","room":"r"}
//	{"type":"leave","room":"r"}          leave group r → {"type":"left","room":"r"}
//	{"type":"say","text":"t"}            to every member (sender included) of each room the
//	                                     sender is in: {"type":"say","room":"r","from":id,"uid":"u","text":"t"}
//	{"type":"to_uid","uid":"u","text":"t"}  to uid u's clients: {"type":"to_uid","from":id,"text":"t"}
//	{"type":"ungroup","room":"r"}        every member leaves r (no reply)
//	{"type":"whoami"}                    → {"type":"whoami","client_id":id,"uid":"u","session":{…}}
//	{"type":"session_set","session":{…}}     replace the session → {"type":"session","session":{…}}
//	{"type":"session_update","session":{…}}  merge into it       → {"type":"session","session":{…}}
//	{"type":"stats","room":"r","uid":"u"} presence counters and lists (see stats below)
//	{"type":"logout"}                    unbind the sender's uid → {"type":"logout","ok":true,"uid":"u"}
//	{"type":"broadcast","text":"t"}      to every other client: {"type":"broadcast","from":id,"text":"t"}
//	{"type":"online","client_id":"c"}    → {"type":"online","client_id":"c","online":true|false}
//	{"type":"kick","client_id":"c","text":"t"}  c gets {"type":"kicked","error":"t"}, then a normal close
//
// Presence (added for the browser demo, web/demo/chat.html; every message
// above is unchanged): a join with "presence":true,
//
//	{"type":"join","room":"r","presence":true}  → {"type":"joined","room":"r"}, then to the room:
//	    {"type":"presence","room":"r","event":"join","client_id":id,"uids":[…],"clients":n}
//
// also tells the room when that client leaves it ("event":"leave", after
// the "left" reply) or disconnects ("event":"close"): uids are the distinct
// uids of the room's members after the change, in no particular order, and
// clients the number of its members. {"type":"presence","room":"r"} asks
// for the same message (without event and client_id), answered to the
// sender only. The rooms a client joined with presence are kept in the
// module's key-value store under "presence:<client id>" as {"r":true},
// since the session is gone by on_close.
//
// Bad JSON, an unknown type or a failed host call gets {"type":"error",
// "error":"…"}. to_uid and ungroup send nothing back when they succeed.
//
// Each client may send at most 20 messages per second (fixed one-second
// windows, counted with kv_incr under "rate:<client id>" in the module's
// key-value store, which all instances share). A message over the limit is
// dropped and answered {"type":"error","error":"rate limited"}. The module
// config sets the limit: config = "rate_limit=50" under [modules.chat] in
// config.toml; "rate_limit=0" turns it off.
//
// Different instances may serve different events of one client, so the rooms
// a client joined are kept in its session, as {"rooms":{"r":true}} (a room it
// left is set to false rather than removed, since update_session can only
// merge). session_set replaces the whole session, rooms included.
package main

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/guest-examples/gateway"
)

type request struct {
	Type     string          `json:"type"`
	Uid      string          `json:"uid"`
	Room     string          `json:"room"`
	Text     string          `json:"text"`
	Session  json.RawMessage `json:"session"`
	ClientID string          `json:"client_id"`
	Presence bool            `json:"presence"`
}

type errorReply struct {
	Type  string `json:"type"`
	Error string `json:"error"`
}

type loginReply struct {
	Type string `json:"type"`
	OK   bool   `json:"ok"`
	Uid  string `json:"uid"`
}

type roomReply struct {
	Type string `json:"type"`
	Room string `json:"room"`
}

type sayMessage struct {
	Type string `json:"type"`
	Room string `json:"room"`
	From string `json:"from"`
	Uid  string `json:"uid"`
	Text string `json:"text"`
}

type toUidMessage struct {
	Type string `json:"type"`
	From string `json:"from"`
	Text string `json:"text"`
}

type whoamiReply struct {
	Type     string          `json:"type"`
	ClientID string          `json:"client_id"`
	Uid      string          `json:"uid"`
	Session  json.RawMessage `json:"session"`
}

type sessionReply struct {
	Type    string          `json:"type"`
	Session json.RawMessage `json:"session"`
}

type statsReply struct {
	Type         string   `json:"type"`
	AllClients   int      `json:"all_clients"`
	AllClientIDs []string `json:"all_client_ids"`
	AllUids      []string `json:"all_uids"`
	UidCount     int      `json:"uid_count"`
	Groups       []string `json:"groups"`
	Room         string   `json:"room"`
	RoomClients  []string `json:"room_clients"`
	RoomCount    int      `json:"room_count"`
	RoomUids     []string `json:"room_uids"`
	RoomUidCount int      `json:"room_uid_count"`
	Uid          string   `json:"uid,omitempty"`
	UidClients   []string `json:"uid_clients"`
	UidOnline    bool     `json:"uid_online"`
}

func init() {
	gateway.OnStart(configure)
	gateway.OnMessage(onMessage)
	gateway.OnClose(func(c gateway.Client) {
		gateway.KV.Delete(rateKey(c.ID))
		presenceClosed(c)
	})
}

func main() {}

// rateLimit is the most messages a client may send per rateWindow; 0: no
// limit. Every instance sets it from the module config in on_start.
var rateLimit int64 = 20

const rateWindow = time.Second

// configure reads the module config: space- or comma-separated key=value
// pairs, of which only rate_limit is known. A bad config panics, which
// fails the instance: the server refuses the module rather than run it
// with a setting it did not ask for.
func configure(config string) {
	for _, f := range strings.FieldsFunc(config, func(r rune) bool { return r == ',' || r == ' ' }) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "rate_limit":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				panic("chat config: rate_limit must be a number >= 0, not " + strconv.Quote(v))
			}
			rateLimit = n
		default:
			panic("chat config: unknown key " + strconv.Quote(k))
		}
	}
}

func rateKey(id string) string { return "rate:" + id }

// rateLimited counts the message in the client's current window and
// reports whether it is over the limit. The window starts with the first
// message: kv_incr sets the TTL only when it creates the key.
func rateLimited(c gateway.Client) bool {
	if rateLimit == 0 {
		return false
	}
	n, err := gateway.KV.Incr(rateKey(c.ID), 1, rateWindow)
	if err != nil { // the store is full, say: let the message through
		gateway.Warn("chat: rate limit for " + c.ID + ": " + err.Error())
		return false
	}
	return n > rateLimit
}

func onMessage(c gateway.Client, msg []byte) {
	if rateLimited(c) {
		replyError(c, "rate limited")
		return
	}
	var req request
	if err := json.Unmarshal(msg, &req); err != nil {
		replyError(c, "bad json: "+err.Error())
		return
	}
	var err error
	switch req.Type {
	case "login":
		err = login(c, req)
	case "join":
		err = join(c, req)
	case "leave":
		err = leave(c, req)
	case "say":
		err = say(c, req)
	case "to_uid":
		err = toUid(c, req)
	case "ungroup":
		err = ungroup(req)
	case "whoami":
		err = whoami(c)
	case "session_set":
		err = setSession(c, req, c.SetSession)
	case "session_update":
		err = setSession(c, req, c.UpdateSession)
	case "stats":
		err = stats(c, req)
	case "logout":
		err = logout(c)
	case "broadcast":
		err = broadcast(c, req)
	case "online":
		err = online(c, req)
	case "kick":
		err = kick(req)
	case "presence":
		err = presence(c, req)
	case "":
		err = errorf("missing type")
	default:
		err = errorf("unknown type " + quote(req.Type))
	}
	if err != nil {
		replyError(c, err.Error())
	}
}

// userError is an error reported to the client as is.
type userError string

func (e userError) Error() string { return string(e) }

func errorf(msg string) error { return userError(msg) }

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func reply(c gateway.Client, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Send(b)
}

func replyError(c gateway.Client, msg string) {
	if err := reply(c, errorReply{Type: "error", Error: msg}); err != nil {
		gateway.Warn("chat: cannot send error to " + c.ID + ": " + err.Error())
	}
}

func need(field, v string) error {
	if v == "" {
		return errorf(field + " required")
	}
	return nil
}

func login(c gateway.Client, req request) error {
	if err := need("uid", req.Uid); err != nil {
		return err
	}
	if err := c.BindUid(req.Uid); err != nil {
		return err
	}
	return reply(c, loginReply{Type: "login", OK: true, Uid: req.Uid})
}

// markRoom records in the client's session whether it is in room.
func markRoom(c gateway.Client, room string, in bool) error {
	patch, err := json.Marshal(map[string]map[string]bool{"rooms": {room: in}})
	if err != nil {
		return err
	}
	return c.UpdateSession(patch)
}

// sessionRooms returns the rooms the client's session says it is in, sorted.
func sessionRooms(c gateway.Client) ([]string, error) {
	b, err := c.Session()
	if err != nil {
		return nil, err
	}
	var s struct {
		Rooms map[string]bool `json:"rooms"`
	}
	// A session whose "rooms" is not an object of booleans (overwritten by
	// session_set) simply lists no rooms.
	_ = json.Unmarshal(b, &s)
	var rooms []string
	for r, in := range s.Rooms {
		if in {
			rooms = append(rooms, r)
		}
	}
	sort.Strings(rooms)
	return rooms, nil
}

func join(c gateway.Client, req request) error {
	if err := need("room", req.Room); err != nil {
		return err
	}
	if err := c.JoinGroup(req.Room); err != nil {
		return err
	}
	if err := markRoom(c, req.Room, true); err != nil {
		return err
	}
	if err := reply(c, roomReply{Type: "joined", Room: req.Room}); err != nil || !req.Presence {
		return err
	}
	rooms := presenceRooms(c.ID)
	rooms[req.Room] = true
	if err := setPresenceRooms(c.ID, rooms); err != nil {
		return err
	}
	return announce(req.Room, "join", c.ID)
}

func leave(c gateway.Client, req request) error {
	if err := need("room", req.Room); err != nil {
		return err
	}
	if err := c.LeaveGroup(req.Room); err != nil {
		return err
	}
	if err := markRoom(c, req.Room, false); err != nil {
		return err
	}
	if err := reply(c, roomReply{Type: "left", Room: req.Room}); err != nil {
		return err
	}
	rooms := presenceRooms(c.ID)
	if !rooms[req.Room] {
		return nil
	}
	delete(rooms, req.Room)
	if err := setPresenceRooms(c.ID, rooms); err != nil {
		return err
	}
	return announce(req.Room, "leave", c.ID)
}

func presenceKey(id string) string { return "presence:" + id }

// presenceRooms returns the rooms the client joined with presence (never
// nil).
func presenceRooms(id string) map[string]bool {
	rooms := map[string]bool{}
	if b, err := gateway.KV.Get(presenceKey(id)); err == nil {
		_ = json.Unmarshal(b, &rooms)
	}
	return rooms
}

func setPresenceRooms(id string, rooms map[string]bool) error {
	if len(rooms) == 0 {
		_, err := gateway.KV.Delete(presenceKey(id))
		return err
	}
	b, err := json.Marshal(rooms)
	if err != nil {
		return err
	}
	return gateway.KV.Set(presenceKey(id), b, 0)
}

type presenceMessage struct {
	Type     string   `json:"type"`
	Room     string   `json:"room"`
	Event    string   `json:"event,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
	Uids     []string `json:"uids"`
	Clients  int      `json:"clients"`
}

// presenceOf is the room's presence message.
func presenceOf(room, event, id string) ([]byte, error) {
	m := presenceMessage{Type: "presence", Room: room, Event: event, ClientID: id, Uids: []string{}}
	uids, err := gateway.GetUidListByGroup(room)
	if err != nil {
		return nil, err
	}
	m.Uids = append(m.Uids, uids...)
	if m.Clients, err = gateway.GetClientIdCountByGroup(room); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// announce tells the room that client id joined, left or disconnected.
func announce(room, event, id string) error {
	b, err := presenceOf(room, event, id)
	if err != nil {
		return err
	}
	_, err = gateway.SendToOneGroup(room, b, nil)
	return err
}

// presence answers {"type":"presence","room":"r"} to the sender.
func presence(c gateway.Client, req request) error {
	if err := need("room", req.Room); err != nil {
		return err
	}
	b, err := presenceOf(req.Room, "", "")
	if err != nil {
		return err
	}
	return c.Send(b)
}

// presenceClosed tells each room the closing client joined with presence
// that it is gone (on_close: the host has already removed it).
func presenceClosed(c gateway.Client) {
	rooms := presenceRooms(c.ID)
	if len(rooms) == 0 {
		return
	}
	_, _ = gateway.KV.Delete(presenceKey(c.ID))
	names := make([]string, 0, len(rooms))
	for r := range rooms {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		if err := announce(r, "close", c.ID); err != nil {
			gateway.Warn("chat: presence of " + c.ID + " in " + r + ": " + err.Error())
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func say(c gateway.Client, req request) error {
	rooms, err := sessionRooms(c)
	if err != nil {
		return err
	}
	uid, err := c.Uid()
	if err != nil {
		return err
	}
	sent := 0
	for _, room := range rooms {
		// The session may be stale: another client may have ungrouped the
		// room. Never send to a room the sender is no longer in.
		members, err := gateway.GetClientIdListByGroup(room)
		if err != nil {
			return err
		}
		if !contains(members, c.ID) {
			if err := markRoom(c, room, false); err != nil {
				return err
			}
			continue
		}
		b, err := json.Marshal(sayMessage{Type: "say", Room: room, From: c.ID, Uid: uid, Text: req.Text})
		if err != nil {
			return err
		}
		if _, err := gateway.SendToOneGroup(room, b, nil); err != nil {
			return err
		}
		sent++
	}
	if sent == 0 {
		return errorf("not in any room")
	}
	return nil
}

func toUid(c gateway.Client, req request) error {
	if err := need("uid", req.Uid); err != nil {
		return err
	}
	b, err := json.Marshal(toUidMessage{Type: "to_uid", From: c.ID, Text: req.Text})
	if err != nil {
		return err
	}
	_, err = gateway.SendToOneUid(req.Uid, b)
	return err
}

func ungroup(req request) error {
	if err := need("room", req.Room); err != nil {
		return err
	}
	return gateway.Ungroup(req.Room)
}

func whoami(c gateway.Client) error {
	uid, err := c.Uid()
	if err != nil {
		return err
	}
	s, err := c.Session()
	if err != nil {
		return err
	}
	return reply(c, whoamiReply{Type: "whoami", ClientID: c.ID, Uid: uid, Session: s})
}

func setSession(c gateway.Client, req request, set func([]byte) error) error {
	if len(req.Session) == 0 || req.Session[0] != '{' {
		return errorf("session must be a JSON object")
	}
	if err := set(req.Session); err != nil {
		return err
	}
	s, err := c.Session()
	if err != nil {
		return err
	}
	return reply(c, sessionReply{Type: "session", Session: s})
}

func stats(c gateway.Client, req request) error {
	st := statsReply{Type: "stats", Room: req.Room, RoomClients: []string{}, RoomUids: []string{}, Uid: req.Uid, UidClients: []string{}}
	var err error
	if st.AllClients, err = gateway.GetAllClientIdCount(); err != nil {
		return err
	}
	if st.AllClientIDs, err = gateway.GetAllClientIdList(); err != nil {
		return err
	}
	if st.AllUids, err = gateway.GetAllUidList(); err != nil {
		return err
	}
	if st.UidCount, err = gateway.GetAllUidCount(); err != nil {
		return err
	}
	if st.Groups, err = gateway.GetAllGroupIdList(); err != nil {
		return err
	}
	if req.Room != "" {
		if st.RoomClients, err = gateway.GetClientIdListByGroup(req.Room); err != nil {
			return err
		}
		if st.RoomCount, err = gateway.GetClientIdCountByGroup(req.Room); err != nil {
			return err
		}
		if st.RoomUids, err = gateway.GetUidListByGroup(req.Room); err != nil {
			return err
		}
		if st.RoomUidCount, err = gateway.GetUidCountByGroup(req.Room); err != nil {
			return err
		}
	}
	if req.Uid != "" {
		if st.UidClients, err = gateway.GetClientIdByUid(req.Uid); err != nil {
			return err
		}
		if st.UidOnline, err = gateway.IsUidOnline(req.Uid); err != nil {
			return err
		}
	}
	return reply(c, st)
}

// logout unbinds the sender's uid: {"type":"logout"} → {"type":"logout","uid":…}.
func logout(c gateway.Client) error {
	uid, err := c.Uid()
	if err != nil {
		return err
	}
	if err := need("uid", uid); err != nil {
		return errorf("not logged in")
	}
	if err := c.UnbindUid(uid); err != nil {
		return err
	}
	return reply(c, loginReply{Type: "logout", OK: true, Uid: uid})
}

// broadcast sends {"type":"broadcast","from":…,"text":…} to every client
// but the sender.
func broadcast(c gateway.Client, req request) error {
	b, err := json.Marshal(toUidMessage{Type: "broadcast", From: c.ID, Text: req.Text})
	if err != nil {
		return err
	}
	_, err = gateway.SendToAll(b, nil, []string{c.ID})
	return err
}

type onlineReply struct {
	Type     string `json:"type"`
	ClientID string `json:"client_id"`
	Online   bool   `json:"online"`
}

// online answers {"type":"online","client_id":…} with whether it is connected.
func online(c gateway.Client, req request) error {
	if err := need("client_id", req.ClientID); err != nil {
		return err
	}
	ok, err := gateway.IsOnline(req.ClientID)
	if err != nil {
		return err
	}
	return reply(c, onlineReply{Type: "online", ClientID: req.ClientID, Online: ok})
}

// kick closes another client after sending it {"type":"kicked","text":…}.
func kick(req request) error {
	if err := need("client_id", req.ClientID); err != nil {
		return err
	}
	b, err := json.Marshal(errorReply{Type: "kicked", Error: req.Text})
	if err != nil {
		return err
	}
	return gateway.CloseClient(req.ClientID, b)
}
