package push

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/wire"
)

// commandTable maps every push command (GatewayClient's names) to its
// implementation. Each is a thin adapter: decode arguments, call the
// Gateway method the WASM host functions also use, shape the result.
func commandTable() map[string]command {
	return map[string]command{
		"ping":                         cmdPing,
		"sendToAll":                    cmdSendToAll,
		"sendToClient":                 cmdSendToClient,
		"closeClient":                  cmdCloseClient,
		"destroyClient":                cmdDestroyClient,
		"isOnline":                     cmdIsOnline,
		"bindUid":                      cmdBindUid,
		"unbindUid":                    cmdUnbindUid,
		"isUidOnline":                  cmdIsUidOnline,
		"isUidsOnline":                 cmdIsUidsOnline,
		"getClientIdByUid":             cmdGetClientIdByUid,
		"batchGetClientIdByUid":        cmdBatchGetClientIdByUid,
		"getUidByClientId":             cmdGetUidByClientId,
		"sendToUid":                    cmdSendToUid,
		"joinGroup":                    cmdJoinGroup,
		"leaveGroup":                   cmdLeaveGroup,
		"ungroup":                      cmdUngroup,
		"sendToGroup":                  cmdSendToGroup,
		"getClientIdCountByGroup":      cmdGetClientIdCountByGroup,
		"batchGetClientIdCountByGroup": cmdBatchGetClientIdCountByGroup,
		"getClientSessionsByGroup":     cmdGetClientSessionsByGroup,
		"getClientIdListByGroup":       cmdGetClientIdListByGroup,
		"getUidListByGroup":            cmdGetUidListByGroup,
		"getUidCountByGroup":           cmdGetUidCountByGroup,
		"getAllClientIdCount":          cmdGetAllClientIdCount,
		"getAllClientSessions":         cmdGetAllClientSessions,
		"getAllClientIdList":           cmdGetAllClientIdList,
		"getAllUidList":                cmdGetAllUidList,
		"getAllUidCount":               cmdGetAllUidCount,
		"getAllGroupIdList":            cmdGetAllGroupIdList,
		"getAllGroupUidList":           cmdGetAllGroupUidList,
		"getAllGroupClientIdList":      cmdGetAllGroupClientIdList,
		"setSession":                   cmdSetSession,
		"updateSession":                cmdUpdateSession,
		"getSession":                   cmdGetSession,
	}
}

func cmdPing(context.Context, Gateway, *wire.Request) (any, error) { return "pong", nil }

func cmdSendToAll(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	msg, _, err := argMessage(r, true, false)
	if err != nil {
		return nil, err
	}
	only, onlyGiven, err := optKeys("client_id_array", r.ClientIDArray)
	if err != nil {
		return nil, err
	}
	exclude, _, err := optKeys("exclude_client_id", r.ExcludeClientID)
	if err != nil {
		return nil, err
	}
	return g.SendToAll(ctx, msg, only, onlyGiven, exclude)
}

// cmdSendToClient is the hot path of pushing: with a plain client_id (no
// escapes, as client ids are) it allocates nothing; the message is copied
// only if it has to be queued.
func cmdSendToClient(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	if id, ok := wire.Plain(r.ClientID); ok && len(id) > 0 {
		msg, _, err := argMessage(r, true, true)
		if err != nil {
			return nil, err
		}
		return true, g.SendBorrowed(ctx, id, msg)
	}
	id, err := argString("client_id", r.ClientID)
	if err != nil {
		return nil, err
	}
	msg, _, err := argMessage(r, true, false)
	if err != nil {
		return nil, err
	}
	return true, g.SendToClient(ctx, id, msg)
}

func cmdCloseClient(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	id, err := argString("client_id", r.ClientID)
	if err != nil {
		return nil, err
	}
	msg, given, err := argMessage(r, false, false)
	if err != nil {
		return nil, err
	}
	var final *abi.Message
	if given {
		final = &msg
	}
	code := 0
	if len(r.Code) > 0 {
		if code, err = strconv.Atoi(string(r.Code)); err != nil || !abi.CloseCodeOK(code) {
			return nil, fmt.Errorf("code %s: a close code is 1000 or in 4000–4999: %w", r.Code, abi.ErrnoInvalid)
		}
	}
	return true, g.CloseClient(ctx, id, final, code)
}

func cmdDestroyClient(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	id, err := argString("client_id", r.ClientID)
	if err != nil {
		return nil, err
	}
	return true, g.DestroyClient(ctx, id)
}

// flag renders a bool the way GatewayClient does: 1 or 0.
func flag(b bool, err error) (any, error) {
	if b {
		return 1, err
	}
	return 0, err
}

func cmdIsOnline(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	id, err := argString("client_id", r.ClientID)
	if err != nil {
		return nil, err
	}
	return flag(g.IsOnline(ctx, id))
}

// clientAndKey decodes the (client_id, uid|group) pair of bind and join
// commands.
func clientAndKey(r *wire.Request, name string, raw []byte) (string, string, error) {
	id, err := argString("client_id", r.ClientID)
	if err != nil {
		return "", "", err
	}
	key, err := argKey(name, raw)
	return id, key, err
}

func cmdBindUid(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	id, uid, err := clientAndKey(r, "uid", r.Uid)
	if err != nil {
		return nil, err
	}
	return true, g.BindUid(ctx, id, uid)
}

func cmdUnbindUid(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	id, uid, err := clientAndKey(r, "uid", r.Uid)
	if err != nil {
		return nil, err
	}
	return true, g.UnbindUid(ctx, id, uid)
}

func cmdIsUidOnline(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	uid, err := argKey("uid", r.Uid)
	if err != nil {
		return nil, err
	}
	return flag(g.IsUidOnline(ctx, uid))
}

func cmdIsUidsOnline(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	byUid, err := batchClientIdByUid(ctx, g, r)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(byUid))
	for uid, ids := range byUid {
		out[uid] = min(len(ids), 1)
	}
	return out, nil
}

func cmdGetClientIdByUid(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	uid, err := argKey("uid", r.Uid)
	if err != nil {
		return nil, err
	}
	return nonNil(g.GetClientIdByUid(ctx, uid))
}

func cmdBatchGetClientIdByUid(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	return batchClientIdByUid(ctx, g, r)
}

func batchClientIdByUid(ctx context.Context, g Gateway, r *wire.Request) (map[string][]string, error) {
	uids, err := argKeys("uids", r.Uids)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(uids))
	for _, uid := range uids {
		ids, err := g.GetClientIdByUid(ctx, uid)
		if err != nil {
			return nil, err
		}
		out[uid] = orEmpty(ids)
	}
	return out, nil
}

func cmdGetUidByClientId(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	id, err := argString("client_id", r.ClientID)
	if err != nil {
		return nil, err
	}
	uid, err := g.GetUidByClientId(ctx, id)
	if isNotFound(err) || (err == nil && uid == "") {
		return nil, nil // GatewayClient answers null for both
	}
	return uid, err
}

func cmdSendToUid(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	uids, err := argOneOrMany("uid", r.Uid)
	if err != nil {
		return nil, err
	}
	msg, _, err := argMessage(r, true, false)
	if err != nil {
		return nil, err
	}
	return g.SendToUid(ctx, uids, msg)
}

func cmdJoinGroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	id, group, err := clientAndKey(r, "group", r.Group)
	if err != nil {
		return nil, err
	}
	return true, g.JoinGroup(ctx, id, group)
}

func cmdLeaveGroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	id, group, err := clientAndKey(r, "group", r.Group)
	if err != nil {
		return nil, err
	}
	return true, g.LeaveGroup(ctx, id, group)
}

func cmdUngroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	group, err := argKey("group", r.Group)
	if err != nil {
		return nil, err
	}
	return true, g.Ungroup(ctx, group)
}

func cmdSendToGroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	groups, err := argOneOrMany("group", r.Group)
	if err != nil {
		return nil, err
	}
	msg, _, err := argMessage(r, true, false)
	if err != nil {
		return nil, err
	}
	exclude, _, err := optKeys("exclude_client_id", r.ExcludeClientID)
	if err != nil {
		return nil, err
	}
	return g.SendToGroup(ctx, groups, msg, exclude)
}

func cmdGetClientIdCountByGroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	if r.Group == nil || string(r.Group) == `""` || wire.IsNull(r.Group) {
		return g.GetAllClientIdCount(ctx) // GatewayClient: no group counts everyone
	}
	group, err := argKey("group", r.Group)
	if err != nil {
		return nil, err
	}
	return g.GetClientIdCountByGroup(ctx, group)
}

func cmdBatchGetClientIdCountByGroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	groups, err := argKeys("groups", r.Groups)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(groups))
	for _, group := range groups {
		if out[group], err = g.GetClientIdCountByGroup(ctx, group); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func cmdGetClientSessionsByGroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	group, err := argKey("group", r.Group)
	if err != nil {
		return nil, err
	}
	return sessionsByGroup(ctx, g, group)
}

func cmdGetClientIdListByGroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	return unionOverGroups(ctx, r, g.GetClientIdListByGroup)
}

func cmdGetUidListByGroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	return unionOverGroups(ctx, r, g.GetUidListByGroup)
}

// unionOverGroups lists the distinct members (or uids) of one or many groups.
func unionOverGroups(ctx context.Context, r *wire.Request, list func(context.Context, string) ([]string, error)) (any, error) {
	groups, err := argOneOrMany("group", r.Group)
	if err != nil {
		return nil, err
	}
	seen := map[string]struct{}{}
	out := []string{}
	for _, group := range groups {
		items, err := list(ctx, group)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if _, dup := seen[it]; !dup {
				seen[it] = struct{}{}
				out = append(out, it)
			}
		}
	}
	return out, nil
}

func cmdGetUidCountByGroup(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	group, err := argKey("group", r.Group)
	if err != nil {
		return nil, err
	}
	return g.GetUidCountByGroup(ctx, group)
}

func cmdGetAllClientIdCount(ctx context.Context, g Gateway, _ *wire.Request) (any, error) {
	return g.GetAllClientIdCount(ctx)
}

func cmdGetAllClientSessions(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	if r.Group != nil && !wire.IsNull(r.Group) && string(r.Group) != `""` {
		return cmdGetClientSessionsByGroup(ctx, g, r)
	}
	ids, err := g.GetAllClientIdList(ctx)
	if err != nil {
		return nil, err
	}
	return sessionsOf(ctx, g, ids)
}

func cmdGetAllClientIdList(ctx context.Context, g Gateway, _ *wire.Request) (any, error) {
	return nonNil(g.GetAllClientIdList(ctx))
}

func cmdGetAllUidList(ctx context.Context, g Gateway, _ *wire.Request) (any, error) {
	return nonNil(g.GetAllUidList(ctx))
}

func cmdGetAllUidCount(ctx context.Context, g Gateway, _ *wire.Request) (any, error) {
	return g.GetAllUidCount(ctx)
}

func cmdGetAllGroupIdList(ctx context.Context, g Gateway, _ *wire.Request) (any, error) {
	return nonNil(g.GetAllGroupIdList(ctx))
}

func cmdGetAllGroupUidList(ctx context.Context, g Gateway, _ *wire.Request) (any, error) {
	return perGroup(ctx, g, g.GetUidListByGroup)
}

func cmdGetAllGroupClientIdList(ctx context.Context, g Gateway, _ *wire.Request) (any, error) {
	return perGroup(ctx, g, g.GetClientIdListByGroup)
}

func cmdSetSession(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	return writeSession(ctx, r, g.SetSession)
}

func cmdUpdateSession(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	return writeSession(ctx, r, g.UpdateSession)
}

func writeSession(ctx context.Context, r *wire.Request, write func(context.Context, string, []byte) error) (any, error) {
	id, err := argString("client_id", r.ClientID)
	if err != nil {
		return nil, err
	}
	session, err := argObject("session", r.Session)
	if err != nil {
		return nil, err
	}
	return true, write(ctx, id, session)
}

func cmdGetSession(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	id, err := argString("client_id", r.ClientID)
	if err != nil {
		return nil, err
	}
	doc, err := g.GetSession(ctx, id)
	if isNotFound(err) {
		return nil, nil
	}
	return json.RawMessage(doc), err
}

func isNotFound(err error) bool { return abi.ErrnoOf(err) == abi.ErrnoNotFound }

// nonNil turns a nil list into [] so JSON answers are arrays, never null.
func nonNil(items []string, err error) (any, error) { return orEmpty(items), err }

func orEmpty(items []string) []string {
	if items == nil {
		return []string{}
	}
	return items
}
