package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/wasmgate/wasmgate/internal/wire"
)

// errNotUTF8 is returned, without contacting the server, for a text message
// that is not valid UTF-8: browsers close a connection on such a frame, and
// JSON cannot carry it. Send it with a Binary method instead.
var errNotUTF8 = &Error{Code: CodeInvalid, Message: "data is not valid UTF-8 (refused by the client; use a Binary method)"}

// data appends the message: a JSON string, or with binary standard base64
// plus "binary":true. It fails for text that is not UTF-8.
func (c *call) data(data []byte, binary bool) error {
	if binary {
		c.buf = append(c.buf, `,"data":"`...)
		c.buf = base64.StdEncoding.AppendEncode(c.buf, data)
		c.buf = append(c.buf, `","binary":true`...)
		return nil
	}
	if !utf8.Valid(data) {
		return errNotUTF8
	}
	c.buf = append(c.buf, `,"data":`...)
	c.buf = wire.AppendString(c.buf, data)
	return nil
}

// exec runs c and ignores its result.
func (cl *Client) exec(ctx context.Context, c *call) error {
	if err := cl.roundTrip(ctx, c); err != nil {
		return err
	}
	cl.free(c)
	return nil
}

// execInt runs c and decodes a number result.
func (cl *Client) execInt(ctx context.Context, c *call) (int, error) {
	if err := cl.roundTrip(ctx, c); err != nil {
		return 0, err
	}
	n, err := decodeInt(c.resp)
	cl.free(c)
	return n, err
}

// execBool runs c and decodes a 1/0 result.
func (cl *Client) execBool(ctx context.Context, c *call) (bool, error) {
	if err := cl.roundTrip(ctx, c); err != nil {
		return false, err
	}
	b, err := decodeBool(c.resp)
	cl.free(c)
	return b, err
}

// execJSON runs c and unmarshals its result into v.
func (cl *Client) execJSON(ctx context.Context, c *call, v any) error {
	if err := cl.roundTrip(ctx, c); err != nil {
		return err
	}
	err := json.Unmarshal(c.resp, v)
	cl.free(c)
	return err
}

// execRaw runs c and returns a copy of its raw result.
func (cl *Client) execRaw(ctx context.Context, c *call) (json.RawMessage, error) {
	if err := cl.roundTrip(ctx, c); err != nil {
		return nil, err
	}
	raw := json.RawMessage(append([]byte(nil), c.resp...))
	cl.free(c)
	return raw, nil
}

// Do sends any command with the given arguments (each marshaled with
// encoding/json) and returns the raw JSON result, e.g.
//
//	res, err := c.Do(ctx, "getClientIdListByGroup", map[string]any{"group": []string{"a", "b"}})
//
// An ok:false answer is returned as *Error. args must not contain "cmd" or
// "id", which the client sets.
func (cl *Client) Do(ctx context.Context, cmd string, args map[string]any) (json.RawMessage, error) {
	c := cl.newCall(cmd)
	for k, v := range args {
		if k == "cmd" || k == "id" {
			cl.put(c)
			return nil, fmt.Errorf("wasmgate: Do: argument %q is set by the client", k)
		}
		b, err := json.Marshal(v)
		if err != nil {
			cl.put(c)
			return nil, fmt.Errorf("wasmgate: Do: argument %q: %w", k, err)
		}
		c.buf = append(c.buf, ',')
		c.buf = wire.AppendString(c.buf, k)
		c.buf = append(c.buf, ':')
		c.buf = append(c.buf, b...)
	}
	return cl.execRaw(ctx, c)
}

// Ping checks the connection (the server answers "pong").
func (cl *Client) Ping(ctx context.Context) error {
	return cl.exec(ctx, cl.newCall("ping"))
}

// SendToClient sends data as a text frame to one client. An offline client is
// an *Error with CodeNotFound (see IsNotFound). data must be valid UTF-8.
func (cl *Client) SendToClient(ctx context.Context, clientID string, data []byte) error {
	return cl.sendToClient(ctx, clientID, data, false)
}

// SendBinaryToClient sends data as a binary frame to one client.
func (cl *Client) SendBinaryToClient(ctx context.Context, clientID string, data []byte) error {
	return cl.sendToClient(ctx, clientID, data, true)
}

func (cl *Client) sendToClient(ctx context.Context, clientID string, data []byte, binary bool) error {
	c := cl.newCall("sendToClient")
	c.str("client_id", clientID)
	if err := c.data(data, binary); err != nil {
		cl.put(c)
		return err
	}
	return cl.exec(ctx, c)
}

// SendToAll sends data as a text frame to every client (only == nil), or to
// the clients listed in only (a non-nil empty only reaches nobody), minus
// those in exclude. It returns how many clients the message was queued for.
func (cl *Client) SendToAll(ctx context.Context, data []byte, only, exclude []string) (int, error) {
	return cl.sendToAll(ctx, data, false, only, exclude)
}

// SendBinaryToAll is SendToAll with a binary frame.
func (cl *Client) SendBinaryToAll(ctx context.Context, data []byte, only, exclude []string) (int, error) {
	return cl.sendToAll(ctx, data, true, only, exclude)
}

func (cl *Client) sendToAll(ctx context.Context, data []byte, binary bool, only, exclude []string) (int, error) {
	c := cl.newCall("sendToAll")
	if err := c.data(data, binary); err != nil {
		cl.put(c)
		return 0, err
	}
	if only != nil {
		c.strs("client_id_array", only)
	}
	if len(exclude) > 0 {
		c.strs("exclude_client_id", exclude)
	}
	return cl.execInt(ctx, c)
}

// SendToUid sends data as a text frame to every client bound to any of uids
// and returns how many clients it was queued for.
func (cl *Client) SendToUid(ctx context.Context, uids []string, data []byte) (int, error) {
	return cl.sendToUid(ctx, uids, data, false)
}

// SendBinaryToUid is SendToUid with a binary frame.
func (cl *Client) SendBinaryToUid(ctx context.Context, uids []string, data []byte) (int, error) {
	return cl.sendToUid(ctx, uids, data, true)
}

func (cl *Client) sendToUid(ctx context.Context, uids []string, data []byte, binary bool) (int, error) {
	c := cl.newCall("sendToUid")
	c.strs("uid", uids)
	if err := c.data(data, binary); err != nil {
		cl.put(c)
		return 0, err
	}
	return cl.execInt(ctx, c)
}

// SendToGroup sends data as a text frame to every member of any of groups,
// minus the clients in exclude, and returns how many clients it was queued
// for.
func (cl *Client) SendToGroup(ctx context.Context, groups []string, data []byte, exclude []string) (int, error) {
	return cl.sendToGroup(ctx, groups, data, false, exclude)
}

// SendBinaryToGroup is SendToGroup with a binary frame.
func (cl *Client) SendBinaryToGroup(ctx context.Context, groups []string, data []byte, exclude []string) (int, error) {
	return cl.sendToGroup(ctx, groups, data, true, exclude)
}

func (cl *Client) sendToGroup(ctx context.Context, groups []string, data []byte, binary bool, exclude []string) (int, error) {
	c := cl.newCall("sendToGroup")
	c.strs("group", groups)
	if err := c.data(data, binary); err != nil {
		cl.put(c)
		return 0, err
	}
	if len(exclude) > 0 {
		c.strs("exclude_client_id", exclude)
	}
	return cl.execInt(ctx, c)
}

// CloseClient closes a client normally, after sending final as a text frame
// when final is not empty. An offline client is CodeNotFound.
func (cl *Client) CloseClient(ctx context.Context, clientID string, final []byte) error {
	return cl.CloseClientWithCode(ctx, clientID, final, 0)
}

// CloseClientWithCode is CloseClient with a WebSocket close code: 0 or 1000
// (normal), or 4000–4999, the application's range (the browser client
// wasmgate.js does not reconnect after 4000–4099). Another code is
// CodeInvalid.
func (cl *Client) CloseClientWithCode(ctx context.Context, clientID string, final []byte, code int) error {
	c := cl.newCall("closeClient")
	c.str("client_id", clientID)
	if len(final) > 0 {
		if err := c.data(final, false); err != nil {
			cl.put(c)
			return err
		}
	}
	if code != 0 {
		c.raw("code", strconv.AppendInt(nil, int64(code), 10))
	}
	return cl.exec(ctx, c)
}

// DestroyClient drops a client's connection at once, discarding messages
// still queued for it. An offline client is CodeNotFound.
func (cl *Client) DestroyClient(ctx context.Context, clientID string) error {
	return cl.clientCmd(ctx, "destroyClient", clientID)
}

// clientCmd runs a command whose only argument is client_id.
func (cl *Client) clientCmd(ctx context.Context, cmd, clientID string) error {
	c := cl.newCall(cmd)
	c.str("client_id", clientID)
	return cl.exec(ctx, c)
}

// IsOnline reports whether a client id is connected.
func (cl *Client) IsOnline(ctx context.Context, clientID string) (bool, error) {
	c := cl.newCall("isOnline")
	c.str("client_id", clientID)
	return cl.execBool(ctx, c)
}

// BindUid binds a client to a user id (a client has at most one uid; a uid
// may have many clients). An offline client is CodeNotFound.
func (cl *Client) BindUid(ctx context.Context, clientID, uid string) error {
	return cl.clientPair(ctx, "bindUid", clientID, "uid", uid)
}

// UnbindUid removes a client's binding to uid. An offline client is
// CodeNotFound.
func (cl *Client) UnbindUid(ctx context.Context, clientID, uid string) error {
	return cl.clientPair(ctx, "unbindUid", clientID, "uid", uid)
}

// clientPair runs a command with client_id and one more string argument.
func (cl *Client) clientPair(ctx context.Context, cmd, clientID, key, val string) error {
	c := cl.newCall(cmd)
	c.str("client_id", clientID)
	c.str(key, val)
	return cl.exec(ctx, c)
}

// IsUidOnline reports whether any client is bound to uid.
func (cl *Client) IsUidOnline(ctx context.Context, uid string) (bool, error) {
	c := cl.newCall("isUidOnline")
	c.str("uid", uid)
	return cl.execBool(ctx, c)
}

// IsUidsOnline reports, for each of uids, whether any client is bound to it.
func (cl *Client) IsUidsOnline(ctx context.Context, uids []string) (map[string]bool, error) {
	c := cl.newCall("isUidsOnline")
	c.strs("uids", uids)
	var m map[string]flag
	if err := cl.execJSON(ctx, c, &m); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = bool(v)
	}
	return out, nil
}

// GetClientIdByUid returns the clients bound to uid (in no particular order).
func (cl *Client) GetClientIdByUid(ctx context.Context, uid string) ([]string, error) {
	c := cl.newCall("getClientIdByUid")
	c.str("uid", uid)
	var ids []string
	err := cl.execJSON(ctx, c, &ids)
	return ids, err
}

// BatchGetClientIdByUid returns, for each of uids, the clients bound to it.
func (cl *Client) BatchGetClientIdByUid(ctx context.Context, uids []string) (map[string][]string, error) {
	c := cl.newCall("batchGetClientIdByUid")
	c.strs("uids", uids)
	var m map[string][]string
	err := cl.execJSON(ctx, c, &m)
	return m, err
}

// GetUidByClientId returns the uid a client is bound to, or "" when it has
// none or is not online.
func (cl *Client) GetUidByClientId(ctx context.Context, clientID string) (string, error) {
	c := cl.newCall("getUidByClientId")
	c.str("client_id", clientID)
	if err := cl.roundTrip(ctx, c); err != nil {
		return "", err
	}
	defer cl.free(c)
	if isNull(c.resp) {
		return "", nil
	}
	var uid string
	if err := json.Unmarshal(c.resp, &uid); err != nil {
		var n json.Number // tolerate a numeric uid
		if json.Unmarshal(c.resp, &n) != nil {
			return "", err
		}
		uid = n.String()
	}
	return uid, nil
}

// JoinGroup adds a client to a group. An offline client is CodeNotFound.
func (cl *Client) JoinGroup(ctx context.Context, clientID, group string) error {
	return cl.clientPair(ctx, "joinGroup", clientID, "group", group)
}

// LeaveGroup removes a client from a group. An offline client is
// CodeNotFound.
func (cl *Client) LeaveGroup(ctx context.Context, clientID, group string) error {
	return cl.clientPair(ctx, "leaveGroup", clientID, "group", group)
}

// Ungroup removes every member from a group (the clients stay connected).
func (cl *Client) Ungroup(ctx context.Context, group string) error {
	c := cl.newCall("ungroup")
	c.str("group", group)
	return cl.exec(ctx, c)
}

// GetClientIdCountByGroup returns the number of clients in group; for
// group == "" the number of all clients, as GatewayClient does.
func (cl *Client) GetClientIdCountByGroup(ctx context.Context, group string) (int, error) {
	c := cl.newCall("getClientIdCountByGroup")
	if group != "" {
		c.str("group", group)
	}
	return cl.execInt(ctx, c)
}

// BatchGetClientIdCountByGroup returns the number of clients in each of
// groups.
func (cl *Client) BatchGetClientIdCountByGroup(ctx context.Context, groups []string) (map[string]int, error) {
	c := cl.newCall("batchGetClientIdCountByGroup")
	c.strs("groups", groups)
	var m map[string]int
	err := cl.execJSON(ctx, c, &m)
	return m, err
}

// GetClientSessionsByGroup returns the session of every client in group,
// keyed by client id.
func (cl *Client) GetClientSessionsByGroup(ctx context.Context, group string) (map[string]json.RawMessage, error) {
	c := cl.newCall("getClientSessionsByGroup")
	c.str("group", group)
	var m map[string]json.RawMessage
	err := cl.execJSON(ctx, c, &m)
	return m, err
}

// GetClientIdListByGroup returns the clients in group.
func (cl *Client) GetClientIdListByGroup(ctx context.Context, group string) ([]string, error) {
	return cl.groupList(ctx, "getClientIdListByGroup", group)
}

// GetUidListByGroup returns the uids bound to the clients in group.
func (cl *Client) GetUidListByGroup(ctx context.Context, group string) ([]string, error) {
	return cl.groupList(ctx, "getUidListByGroup", group)
}

func (cl *Client) groupList(ctx context.Context, cmd, group string) ([]string, error) {
	c := cl.newCall(cmd)
	c.str("group", group)
	var list []string
	err := cl.execJSON(ctx, c, &list)
	return list, err
}

// GetUidCountByGroup returns the number of distinct uids bound to the
// clients in group.
func (cl *Client) GetUidCountByGroup(ctx context.Context, group string) (int, error) {
	c := cl.newCall("getUidCountByGroup")
	c.str("group", group)
	return cl.execInt(ctx, c)
}

// GetAllClientIdCount returns the number of connected clients.
func (cl *Client) GetAllClientIdCount(ctx context.Context) (int, error) {
	return cl.execInt(ctx, cl.newCall("getAllClientIdCount"))
}

// GetAllClientSessions returns the session of every client (group == "") or
// of every client in group, keyed by client id.
func (cl *Client) GetAllClientSessions(ctx context.Context, group string) (map[string]json.RawMessage, error) {
	c := cl.newCall("getAllClientSessions")
	if group != "" {
		c.str("group", group)
	}
	var m map[string]json.RawMessage
	err := cl.execJSON(ctx, c, &m)
	return m, err
}

// GetAllClientIdList returns every connected client id.
func (cl *Client) GetAllClientIdList(ctx context.Context) ([]string, error) {
	return cl.list(ctx, "getAllClientIdList")
}

// GetAllUidList returns every uid that has at least one client bound.
func (cl *Client) GetAllUidList(ctx context.Context) ([]string, error) {
	return cl.list(ctx, "getAllUidList")
}

// GetAllUidCount returns the number of uids that have a client bound.
func (cl *Client) GetAllUidCount(ctx context.Context) (int, error) {
	return cl.execInt(ctx, cl.newCall("getAllUidCount"))
}

// GetAllGroupIdList returns every group that has at least one member.
func (cl *Client) GetAllGroupIdList(ctx context.Context) ([]string, error) {
	return cl.list(ctx, "getAllGroupIdList")
}

func (cl *Client) list(ctx context.Context, cmd string) ([]string, error) {
	var list []string
	err := cl.execJSON(ctx, cl.newCall(cmd), &list)
	return list, err
}

// GetAllGroupUidList returns, for every group, the uids of its members.
func (cl *Client) GetAllGroupUidList(ctx context.Context) (map[string][]string, error) {
	var m map[string][]string
	err := cl.execJSON(ctx, cl.newCall("getAllGroupUidList"), &m)
	return m, err
}

// GetAllGroupClientIdList returns, for every group, its member client ids.
func (cl *Client) GetAllGroupClientIdList(ctx context.Context) (map[string][]string, error) {
	var m map[string][]string
	err := cl.execJSON(ctx, cl.newCall("getAllGroupClientIdList"), &m)
	return m, err
}

// SetSession replaces a client's session. session is marshaled with
// encoding/json and must produce a JSON object (a map, a struct, or a
// json.RawMessage holding an object). An offline client is CodeNotFound.
func (cl *Client) SetSession(ctx context.Context, clientID string, session any) error {
	return cl.session(ctx, "setSession", clientID, session)
}

// UpdateSession merges session into a client's session: objects merge
// recursively, other values (arrays, scalars, null) replace. An offline
// client is CodeNotFound.
func (cl *Client) UpdateSession(ctx context.Context, clientID string, session any) error {
	return cl.session(ctx, "updateSession", clientID, session)
}

func (cl *Client) session(ctx context.Context, cmd, clientID string, session any) error {
	b, err := json.Marshal(session)
	if err != nil {
		return fmt.Errorf("wasmgate: %s: %w", cmd, err)
	}
	c := cl.newCall(cmd)
	c.str("client_id", clientID)
	c.raw("session", b)
	return cl.exec(ctx, c)
}

// GetSession returns a client's session as a JSON object ({} when empty), or
// nil when the client is not online.
func (cl *Client) GetSession(ctx context.Context, clientID string) (json.RawMessage, error) {
	c := cl.newCall("getSession")
	c.str("client_id", clientID)
	raw, err := cl.execRaw(ctx, c)
	if err != nil || isNull(raw) {
		return nil, err
	}
	return raw, nil
}
