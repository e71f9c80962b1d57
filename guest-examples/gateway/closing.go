package gateway

// ClosingState is what a client had when it closed: GatewayWorker's
// $_SESSION in onClose, plus its uid and groups. Read it with Closing
// during OnClose, where the client is already gone from the registry.
type ClosingState struct {
	// Uid is the uid the client was bound to, "" if none.
	Uid string
	// Session is its session as a JSON object, "{}" if it had none.
	Session []byte
	// Groups are the groups it was in, sorted.
	Groups []string
}

// Closing returns the closing client's state. It works only during the
// OnClose callback (ErrnoUnsupported elsewhere); ErrnoUnavailable means
// the server could not read it (in cluster mode, the registry did not
// answer). A server older than this function refuses the module at load.
func Closing() (ClosingState, error) {
	l, err := readList(hostClosingState)
	if err != nil {
		return ClosingState{}, err
	}
	if len(l) < 2 {
		return ClosingState{}, ErrnoInternal
	}
	return ClosingState{Uid: l[0], Session: []byte(l[1]), Groups: l[2:]}, nil
}
