package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/wasmgate/wasmgate/client"
)

// The seed flow: bind the client id a page received in its "init" message to
// user 4, then push a task notification to every connection of user 4.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "127.0.0.1:5678", client.WithSecret("s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	clientID := "00000000a3f1c2d40001" // from the page's {"type":"init","client_id":…}
	if err := c.BindUid(ctx, clientID, "4"); err != nil {
		if client.IsNotFound(err) {
			log.Print("the page is gone")
			return
		}
		log.Fatal(err)
	}

	n, err := c.SendToUid(ctx, []string{"4"}, []byte(`{"type":"task_done","id":329}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("delivered to", n, "connections")
}
