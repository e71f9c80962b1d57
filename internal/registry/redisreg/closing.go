package redisreg

import "context"

// ClientGroups implements registry.ClientGrouper: SMEMBERS of the client's
// groups set, so that the closing state needs no scan of every group. An
// unknown client has no groups (Redis has no empty sets).
func (r *Registry) ClientGroups(ctx context.Context, id string) ([]string, error) {
	return r.members(ctx, "client groups", r.prefix+"client:"+id+":groups")
}
