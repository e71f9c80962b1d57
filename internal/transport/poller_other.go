//go:build !linux

package transport

// Poller is Linux's epoll-based parking of idle clients
// (poller_linux.go). Elsewhere there is none: NewPoller returns nil, and
// a reader the sweep wakes moves to a fresh goroutine instead.
type Poller struct{}

// NewPoller returns nil: idle clients keep a reader goroutine here.
func NewPoller() (*Poller, error) { return nil, nil }

// Close does nothing.
func (p *Poller) Close() {}

func (p *Poller) arm(*Conn, bool) bool { return false }

func (p *Poller) disarm(*Conn) {}

func (p *Poller) release(*Conn) {}
