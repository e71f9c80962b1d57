package wasmgatetest

import (
	"slices"

	"github.com/wasmgate/wasmgate/abi"
)

// Client is a connected client of a Handler.
type Client struct {
	// ID is the client id the handler sees: 20 lower-case hex digits.
	ID string
	h  *Handler
}

// Send delivers a text message to on_message. It returns on_message's
// failure (a trap, a deadline), if any.
func (c *Client) Send(text string) error {
	return c.SendMessage(abi.Message{Data: []byte(text)})
}

// SendBinary delivers a binary message to on_message.
func (c *Client) SendBinary(data []byte) error {
	return c.SendMessage(abi.Message{Data: data, Binary: true})
}

// SendMessage delivers msg to on_message. Unlike the server, it does not
// check that a text message is UTF-8: a test may send what a broken
// client could not.
func (c *Client) SendMessage(msg abi.Message) error {
	err := c.h.mod.OnMessage(c.h.ctx, c.ID, msg)
	c.h.closePending()
	return err
}

// Close disconnects the client as a browser closing the page would:
// the registry forgets it and on_close runs (closing_state answers with
// what it had). Closing a client twice does nothing.
func (c *Client) Close() error {
	_, err := c.h.disconnect(c.ID, 1001)
	return err
}

// Received returns every message sent to the client so far, in order.
func (c *Client) Received() []abi.Message {
	c.h.gw.mu.Lock()
	defer c.h.gw.mu.Unlock()
	return slices.Clone(c.h.gw.inbox[c.ID])
}

// Take returns the messages received since the last Take (or since the
// client connected) and forgets them.
func (c *Client) Take() []abi.Message {
	c.h.gw.mu.Lock()
	defer c.h.gw.mu.Unlock()
	m := c.h.gw.inbox[c.ID]
	c.h.gw.inbox[c.ID] = nil
	return m
}

// Last returns the last message the client received, or a zero Message
// if none.
func (c *Client) Last() abi.Message {
	c.h.gw.mu.Lock()
	defer c.h.gw.mu.Unlock()
	m := c.h.gw.inbox[c.ID]
	if len(m) == 0 {
		return abi.Message{}
	}
	return m[len(m)-1]
}

// Closed reports whether the client is gone — closed by the handler
// (close_client) or by Close — and the close code (1000, 4000–4999 from
// close_client; 1001 for Close).
func (c *Client) Closed() (bool, int) {
	c.h.gw.mu.Lock()
	defer c.h.gw.mu.Unlock()
	code, ok := c.h.gw.closed[c.ID]
	return ok, code
}

// Uid, Groups and Session are the client's, as Handler's.
func (c *Client) Uid() string { return c.h.Uid(c.ID) }

// Groups lists the client's groups, sorted.
func (c *Client) Groups() []string { return c.h.Groups(c.ID) }

// Session returns the client's session JSON ("{}" if empty, nil if gone).
func (c *Client) Session() []byte { return c.h.Session(c.ID) }
