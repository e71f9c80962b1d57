package browsertest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
)

// The browser tests (issue 13): the demo pages and the admin dashboard in a
// real headless Chromium, against the real wasmgate binary and demo
// backend. make test-browser runs them alone; make test with the rest.

// js quotes s as a JavaScript string literal.
func js(s string) string { return strconv.Quote(s) }

// joinChat fills in the chat page's name and room and joins.
func joinChat(ctx context.Context, t *testing.T, p *Page, name, room string) {
	t.Helper()
	must(t, p.Eval(ctx, fmt.Sprintf(`(() => {
		document.getElementById("name").value = %s;
		document.getElementById("room").value = %s;
		document.getElementById("join").click();
	})()`, js(name), js(room)), nil))
	must(t, p.WaitFor(ctx, `window.chatDemo.me.joined`))
}

func sayChat(ctx context.Context, t *testing.T, p *Page, text string) {
	t.Helper()
	must(t, p.Eval(ctx, fmt.Sprintf(`(() => {
		document.getElementById("text").value = %s;
		document.getElementById("send").click();
	})()`, js(text)), nil))
}

// seesMessage is a condition: the page's message list shows text.
func seesMessage(text string) string {
	return fmt.Sprintf(`document.getElementById("messages").textContent.includes(%s)`, js(text))
}

// TestBrowser_ChatTwoPagesOneRoom: two pages chat in one room and see each
// other in the presence list; a third page in another room sees none of it.
// Against the Go and the C build of the chat handler.
func TestBrowser_ChatTwoPagesOneRoom(t *testing.T) {
	ctx, b := browser(t)
	g := startGateway(t, "")
	for _, module := range []string{"chat", "c-chat"} {
		t.Run(module, func(t *testing.T) {
			page := g.url("/demo/chat?module=" + module)
			ann := open(ctx, t, b, page, 1000, 700)
			bob := open(ctx, t, b, page, 390, 844) // a phone
			eve := open(ctx, t, b, page, 1000, 700)
			joinChat(ctx, t, ann, "ann", "lobby-"+module)
			joinChat(ctx, t, bob, "bob", "lobby-"+module)
			joinChat(ctx, t, eve, "eve", "other-"+module)
			for _, p := range []*Page{ann, bob} {
				must(t, p.WaitFor(ctx, `(() => {
					const names = [...document.querySelectorAll("#members li")].map((li) => li.textContent);
					return names.length === 2 && names.some((n) => n.startsWith("ann")) && names.some((n) => n.startsWith("bob"))
						&& document.getElementById("count").textContent === "2";
				})()`))
			}
			must(t, ann.WaitFor(ctx, seesMessage("bob joined")))

			sayChat(ctx, t, ann, "hello from ann")
			sayChat(ctx, t, bob, "hi ann, bob here")
			sayChat(ctx, t, eve, "anyone in other?")
			for _, p := range []*Page{ann, bob} {
				must(t, p.WaitFor(ctx, seesMessage("hello from ann")+" && "+seesMessage("hi ann, bob here")))
			}
			// eve's own message arrived after the others were sent: had
			// lobby's reached her, they would be there by now.
			must(t, eve.WaitFor(ctx, seesMessage("anyone in other?")))
			var leaked bool
			must(t, eve.Eval(ctx, seesMessage("hello from ann")+" || "+seesMessage("bob here")+
				` || [...document.querySelectorAll("#members li")].length !== 1`, &leaked))
			if leaked {
				t.Fatal("a page in another room saw the lobby's messages or members")
			}
			for _, p := range []*Page{ann, bob} {
				var other bool
				must(t, p.Eval(ctx, seesMessage("anyone in other?"), &other))
				if other {
					t.Fatal("a lobby page saw the other room's message")
				}
			}
			if module == "chat" {
				screenshot(ctx, t, ann, "chat.png")
			}
			// bob closes his tab: ann sees him go.
			must(t, bob.Close(ctx))
			must(t, ann.WaitFor(ctx, seesMessage("bob left")+` && document.getElementById("count").textContent === "1"`))
		})
	}
}

// bound is a condition: the task page has bound its current client_id.
const bound = `window.tasksDemo.state.bound && window.tasksDemo.state.clientId`

// TestBrowser_TaskNotifications: "start task" in one tab; the demo backend
// pushes its progress and result to the user through the text port, and
// both tabs of that user show it; a tab of another user does not. A page
// whose backend is not running says so.
func TestBrowser_TaskNotifications(t *testing.T) {
	ctx, b := browser(t)
	g := startGateway(t, "")
	backend := startBackend(t, g, "")
	page := g.url("/demo/tasks?backend=" + backend)
	one := open(ctx, t, b, page, 1000, 700)
	two := open(ctx, t, b, page, 390, 844)
	other := open(ctx, t, b, page, 1000, 700)
	must(t, other.Eval(ctx, `(() => { const u = document.getElementById("uid"); u.value = "5"; u.dispatchEvent(new Event("change")); })()`, nil))
	for _, p := range []*Page{one, two, other} {
		must(t, p.WaitFor(ctx, bound))
	}
	must(t, other.WaitFor(ctx, `document.getElementById("bound").textContent === "bound to user 5"`))

	must(t, one.Eval(ctx, `document.getElementById("start").click()`, nil))
	must(t, one.WaitFor(ctx, `document.querySelector("#tasks li")`))
	var id int
	must(t, one.Eval(ctx, `Number(document.querySelector("#tasks li").id.slice(5))`, &id))
	finished := fmt.Sprintf(`document.getElementById("tasks").textContent.includes("task %d finished: report is ready")`, id)
	for _, p := range []*Page{one, two} {
		must(t, p.WaitFor(ctx, finished))
		// The progress pushes reached both tabs too (the bar is replaced
		// by the result: the page notes what it saw).
		must(t, p.WaitFor(ctx, fmt.Sprintf(`Number(document.getElementById("task-%d").dataset.progressSeen) > 0`, id)))
	}
	if os.Getenv("WASMGATE_SCREENSHOTS") != "" {
		// A second task, caught while it runs if the machine is quick
		// enough (finished otherwise: either makes the picture).
		must(t, one.Eval(ctx, `document.getElementById("start").click()`, nil))
		must(t, two.WaitFor(ctx, fmt.Sprintf(`(() => { const li = document.getElementById("task-%d");
			return li && (li.dataset.progressSeen || li.classList.contains("finished")); })()`, id+1)))
		screenshot(ctx, t, two, "tasks.png")
	}
	var seen bool
	must(t, other.Eval(ctx, `document.querySelector("#tasks li") !== null`, &seen))
	if seen {
		t.Fatal("user 5's tab saw user 4's task")
	}

	down := open(ctx, t, b, g.url("/demo/tasks?backend=http://"+freePort(t)), 1000, 700)
	must(t, down.WaitFor(ctx, `!document.getElementById("backendDown").classList.contains("hidden")
		&& document.getElementById("start").disabled`))
}

// TestBrowser_ReconnectAfterRestart: the gateway is killed (SIGKILL, no
// close frames) and started again on the same port. The task page
// reconnects by itself, gets a new client_id, binds it again, and the next
// push arrives; the chat page rejoins its room with the typed draft intact
// and delivers what was sent while disconnected. No page has a JavaScript
// error.
func TestBrowser_ReconnectAfterRestart(t *testing.T) {
	ctx, b := browser(t)
	g := startGateway(t, "")
	backend := startBackend(t, g, "")
	tasks := open(ctx, t, b, g.url("/demo/tasks?backend="+backend), 1000, 700)
	chat := open(ctx, t, b, g.url("/demo/chat"), 1000, 700)
	watcher := open(ctx, t, b, g.url("/demo/chat"), 1000, 700)
	must(t, tasks.WaitFor(ctx, bound))
	var before string
	must(t, tasks.Eval(ctx, `window.tasksDemo.state.clientId`, &before))
	joinChat(ctx, t, chat, "ann", "lobby")

	g.kill()
	must(t, tasks.WaitFor(ctx, `window.tasksDemo.gw.state === "reconnecting"`))
	must(t, chat.WaitFor(ctx, `window.chatDemo.gw.state === "reconnecting" && !window.chatDemo.me.joined`))
	// Typed and sent while the server is down.
	sayChat(ctx, t, chat, "sent while down")
	must(t, chat.Eval(ctx, `document.getElementById("text").value = "half a thought"`, nil))

	g.start()
	must(t, tasks.WaitFor(ctx, bound+` && window.tasksDemo.state.clientId !== `+js(before)))
	must(t, tasks.Eval(ctx, `document.getElementById("start").click()`, nil))
	must(t, tasks.WaitFor(ctx, `document.getElementById("tasks").textContent.includes("finished: report is ready")`))

	must(t, chat.WaitFor(ctx, `window.chatDemo.me.joined`))
	joinChat(ctx, t, watcher, "bob", "lobby")
	must(t, chat.WaitFor(ctx, seesMessage("ann: sent while down")+` && !`+seesMessage("waiting for the connection")))
	var draft string
	must(t, chat.Eval(ctx, `document.getElementById("text").value`, &draft))
	if draft != "half a thought" {
		t.Fatalf("the draft after the reconnect is %q", draft)
	}
	sayChat(ctx, t, chat, "back again")
	must(t, watcher.WaitFor(ctx, seesMessage("back again")))
}

// TestBrowser_Dashboard: the admin dashboard, behind the push secret, shows
// a connection count that moves as pages open and close, and the modules
// with their reload history.
func TestBrowser_Dashboard(t *testing.T) {
	ctx, b := browser(t)
	g := startGateway(t, "dash-secret")
	ui := open(ctx, t, b, g.adminURL("/ui"), 1200, 800)
	must(t, ui.WaitFor(ctx, `!document.getElementById("auth").classList.contains("hidden")`))
	must(t, ui.Eval(ctx, `(() => {
		document.getElementById("secret").value = "dash-secret";
		document.querySelector("#auth button").click();
	})()`, nil))
	clients := func(n int) string {
		return fmt.Sprintf(`document.getElementById("clients").textContent === "%d"`, n)
	}
	must(t, ui.WaitFor(ctx, clients(0)+` && document.querySelector('#modules tr[data-module="chat"]')
		&& document.getElementById("reloads").textContent.includes("loaded")`))

	p1 := open(ctx, t, b, g.url("/demo/chat"), 800, 600)
	p2 := open(ctx, t, b, g.url("/demo/tasks?backend=http://"+freePort(t)), 800, 600)
	joinChat(ctx, t, p1, "ann", "lobby")
	sayChat(ctx, t, p1, "for the event counters")
	must(t, ui.WaitFor(ctx, clients(2)))
	must(t, ui.WaitFor(ctx, `document.querySelector('#modules tr[data-module="chat"]').children[4].textContent !== "–"`)) // p99
	screenshot(ctx, t, ui, "dashboard.png")
	must(t, p2.Close(ctx))
	must(t, ui.WaitFor(ctx, clients(1)))
	must(t, p1.Close(ctx))
	must(t, ui.WaitFor(ctx, clients(0)))
}
