/* c-presence: guest-examples/presence in C. on_close reads the closing
 * client's uid, session and groups with wg_closing_state and tells the other
 * members of its groups: "closed <id> uid=<uid> groups=<g1,g2> session=<json>".
 * Messages: "uid U" (bind), "join G" (join group), "session J" (set the
 * session); each is answered "ok" or "error: ...". */
#include "wasmgate.h"

/* cut splits msg at its first space into cmd and arg. */
static void cut(wg_bytes msg, wg_bytes *cmd, wg_bytes *arg) {
	unsigned int i = 0;
	while (i < msg.n && msg.p[i] != ' ') i++;
	*cmd = (wg_bytes){msg.p, i};
	*arg = i < msg.n ? (wg_bytes){msg.p + i + 1, msg.n - i - 1} : (wg_bytes){0, 0};
}

static int on_message(wg_bytes id, wg_bytes msg, int flags) {
	(void)flags;
	wg_bytes cmd, arg;
	cut(msg, &cmd, &arg);
	int rc;
	if (wg_eq(cmd, WG_LIT("uid"))) rc = wg_bind_uid(id, arg);
	else if (wg_eq(cmd, WG_LIT("join"))) rc = wg_join_group(id, arg);
	else if (wg_eq(cmd, WG_LIT("session"))) rc = wg_set_session(id, arg);
	else {
		wg_buf b = {0};
		wg_puts(&b, WG_LIT("error: unknown command "));
		wg_puts(&b, cmd);
		wg_send(id, wg_buf_bytes(&b), 0);
		return 0;
	}
	if (rc < 0) {
		wg_buf b = {0};
		wg_puts(&b, WG_LIT("error: "));
		wg_puts(&b, wg_cstr(wg_strerror(rc)));
		wg_send(id, wg_buf_bytes(&b), 0);
		return 0;
	}
	wg_send(id, WG_LIT("ok"), 0);
	return 0;
}
WASMGATE_ON_MESSAGE(on_message)

static int on_close(wg_bytes id) {
	wg_bytes st, uid, session, group;
	int rc = wg_closing_state(&st);
	if (rc < 0) {
		wg_log(WG_ERROR, wg_cstr(wg_strerror(rc)));
		return 0;
	}
	wg_bytes groups = st; /* the list after uid and session */
	if (wg_list_next(&groups, &uid) <= 0 || wg_list_next(&groups, &session) <= 0) return 1;
	if (groups.n == 0) return 0;
	wg_buf b = {0};
	wg_puts(&b, WG_LIT("closed "));
	wg_puts(&b, id);
	wg_puts(&b, WG_LIT(" uid="));
	wg_puts(&b, uid);
	wg_puts(&b, WG_LIT(" groups="));
	wg_bytes rest = groups;
	for (int first = 1; wg_list_next(&rest, &group) > 0; first = 0) {
		if (!first) wg_putc(&b, ',');
		wg_puts(&b, group);
	}
	wg_puts(&b, WG_LIT(" session="));
	wg_puts(&b, session);
	wg_send_to_group(groups, wg_buf_bytes(&b), 0, (wg_bytes){0, 0});
	return 0;
}
WASMGATE_ON_CLOSE(on_close)
