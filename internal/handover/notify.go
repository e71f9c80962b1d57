package handover

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// Notify sends state to systemd's notification socket ($NOTIFY_SOCKET, see
// sd_notify(3)): "READY=1" once serving, "MAINPID=<pid>" when a new process
// takes over. It reports false, and does nothing, outside systemd.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if strings.HasPrefix(path, "@") { // an abstract socket
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return true, nil
}
