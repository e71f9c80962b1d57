package gateway

// Client is a connected client as a callback sees it: its id and, during
// OnMessage, the frame type of the current message. It is a small value; a
// Client{ID: id} built from any client id works with every method except
// Binary and Reply.
type Client struct {
	// ID is the client id: 20 lower-case hex digits, opaque.
	ID string

	binary bool
}

// Binary reports whether the current message arrived in a binary frame. It
// is false outside OnMessage.
func (c Client) Binary() bool { return c.binary }

// Send sends msg to the client as a text frame; msg must be valid UTF-8.
func (c Client) Send(msg []byte) error { return SendToClientFlags(c.ID, msg, 0) }

// SendString sends s to the client as a text frame.
func (c Client) SendString(s string) error { return SendToClientFlags(c.ID, []byte(s), 0) }

// SendBinary sends msg to the client as a binary frame.
func (c Client) SendBinary(msg []byte) error { return SendToClientFlags(c.ID, msg, FlagBinary) }

// Reply sends msg to the client in the frame type of the current message:
// binary if it was binary, text otherwise.
func (c Client) Reply(msg []byte) error {
	var f Flags
	if c.binary {
		f = FlagBinary
	}
	return SendToClientFlags(c.ID, msg, f)
}

// Close closes the connection normally, first sending finalMsg as a text
// frame if it is not empty.
func (c Client) Close(finalMsg []byte) error { return CloseClientFlags(c.ID, finalMsg, 0) }

// IsOnline reports whether the client is still connected.
func (c Client) IsOnline() (bool, error) { return IsOnline(c.ID) }

// BindUid binds the client to uid, replacing any previous uid.
func (c Client) BindUid(uid string) error { return BindUid(c.ID, uid) }

// UnbindUid removes the client's binding to uid; it has no effect if the
// client is bound to another uid.
func (c Client) UnbindUid(uid string) error { return UnbindUid(c.ID, uid) }

// Uid returns the uid the client is bound to, or "" if none.
func (c Client) Uid() (string, error) { return GetUidByClientId(c.ID) }

// JoinGroup adds the client to group.
func (c Client) JoinGroup(group string) error { return JoinGroup(c.ID, group) }

// LeaveGroup removes the client from group.
func (c Client) LeaveGroup(group string) error { return LeaveGroup(c.ID, group) }

// SetSession replaces the client's session with json, a JSON object.
func (c Client) SetSession(json []byte) error { return SetSession(c.ID, json) }

// UpdateSession merges the JSON object json into the client's session,
// recursively for nested objects.
func (c Client) UpdateSession(json []byte) error { return UpdateSession(c.ID, json) }

// Session returns the client's session as a JSON object, "{}" if it has none.
func (c Client) Session() ([]byte, error) { return GetSession(c.ID) }
