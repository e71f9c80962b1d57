// Command presence is a wasmgate handler that tells the rooms a client was
// in that it left, with what it had: on_close reads the closing client's
// uid, session and groups with gateway.Closing (GatewayWorker's $_SESSION
// in onClose), although the client is already gone from the registry.
// Text messages:
//
//	uid U        bind uid U          → ok
//	join G       join group G        → ok
//	session J    set the session to J (a JSON object) → ok
//
// A failed host call is answered "error: …". When a client closes, every
// other member of its groups gets one message:
//
//	closed <client id> uid=<uid> groups=<g1,g2> session=<session JSON>
//
// c-presence is the same handler in C.
package main

import (
	"strings"

	"github.com/wasmgate/wasmgate/guest-examples/gateway"
)

func init() {
	gateway.OnMessage(func(c gateway.Client, msg []byte) {
		cmd, arg, _ := strings.Cut(string(msg), " ")
		var err error
		switch cmd {
		case "uid":
			err = c.BindUid(arg)
		case "join":
			err = c.JoinGroup(arg)
		case "session":
			err = c.SetSession([]byte(arg))
		default:
			c.SendString("error: unknown command " + cmd)
			return
		}
		if err != nil {
			c.SendString("error: " + err.Error())
			return
		}
		c.SendString("ok")
	})
	gateway.OnClose(func(c gateway.Client) {
		st, err := gateway.Closing()
		if err != nil {
			gateway.Error("closing state of " + c.ID + ": " + err.Error())
			return
		}
		if len(st.Groups) == 0 {
			return
		}
		report := "closed " + c.ID + " uid=" + st.Uid + " groups=" + strings.Join(st.Groups, ",") + " session=" + string(st.Session)
		gateway.SendToGroup(st.Groups, []byte(report), nil)
	})
}

func main() {}
