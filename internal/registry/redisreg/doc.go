// Package redisreg is the Redis implementation of registry.Registry, for
// cluster mode (issue 10): every node of a cluster stores its clients'
// presence, uid bindings, groups and sessions in one Redis, so that every
// node answers queries about every client.
//
// How it works, in short (the full design is at the top of redis.go):
//
//   - Keys start with a configurable prefix (default "wasmgate:"). A client
//     is a hash (node, uid, session, session version) plus a set of its
//     groups; uids and groups are sets of client ids; each node has a set of
//     its clients and a heartbeat key with a TTL.
//   - Every read-check-write (group limit, uid rebinding, removal with its
//     uid, groups and session) is one Lua script, so nodes racing on one
//     client stay consistent. UpdateSession merges in Go and stores with a
//     compare-and-set on the session version, retrying when another write
//     won, so the session bytes are exactly the in-process registry's.
//   - A node calls Heartbeat every few seconds (Maintain). A node whose
//     heartbeat expired is dead: HasClient, ClientIDs and ClientCount stop
//     counting its clients at once, and Sweep (run by every survivor)
//     removes them with their uids, groups and sessions.
//   - When Redis is unreachable every call fails within Options.Timeout
//     with an error wrapping abi.ErrnoUnavailable. When Redis comes back,
//     even empty, the next Heartbeat reports the presence lost and the node
//     puts its own clients back with Republish.
//
// Not yet here (see issue 10): the [cluster] config, claiming a free node
// id, cross-node delivery over pub/sub, the cluster key-value store.
package redisreg
