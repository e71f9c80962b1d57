package abi

// ClosingState is what a client had when it closed: GatewayWorker hands
// $_SESSION to onClose, and on_close reads this through closing_state
// (ABI.md §5.4). The server takes it from the registry just before it
// removes the client.
type ClosingState struct {
	// Uid is the client's uid, "" if it had none.
	Uid string
	// Session is the session as a compact JSON object ("{}" if empty).
	Session []byte
	// Groups are the groups the client was in, sorted.
	Groups []string
	// Err, if not nil, is why the state could not be read (the registry
	// did not answer): closing_state returns its Errno instead.
	Err error
}

// Fields returns the state in the order closing_state encodes it as a
// list: uid, session, then the groups.
func (s *ClosingState) Fields() []string {
	out := make([]string, 0, 2+len(s.Groups))
	out = append(out, s.Uid, string(s.Session))
	return append(out, s.Groups...)
}
