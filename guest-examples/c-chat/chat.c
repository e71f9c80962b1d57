/* c-chat: the chat example (guest-examples/chat/main.go) in C, speaking
 * exactly its protocol: the same requests, replies, error replies, rate
 * limit (kv_incr on "rate:<client id>", config "rate_limit=N") and rooms kept
 * in the session as {"rooms":{"r":true}}. See chat/main.go's header comment
 * for the protocol. Only the text after "bad json: " differs: it names the
 * problem in this parser's words, not encoding/json's. Presence ("presence"
 * in a join, {"type":"presence"}, kept under "presence:<client id>") too.
 *
 * Build: clang --target=wasm32 -Oz -nostdlib -ffreestanding -Wl,--no-entry \
 *              -I ../c -o c-chat.wasm chat.c
 */
#include "wasmgate.h"

/* rate_limit: the most messages a client may send per one-second window;
 * 0: no limit. Every instance sets it from the module config in on_start. */
static long long rate_limit = 20;
#define RATE_WINDOW_MS 1000

/* ---- JSON reading ------------------------------------------------------- */

typedef struct {
	const unsigned char *p, *end;
	const char *err; /* first problem, for "bad json: …" */
	int depth;
} jr;

static void ws(jr *r) {
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int fail(jr *r, const char *why) {
	if (!r->err) r->err = why;
	return 0;
}

static int lit(jr *r, const char *s) {
	for (; *s; s++, r->p++)
		if (r->p >= r->end || *r->p != (unsigned char)*s) return fail(r, "invalid literal");
	return 1;
}

static int hex4(const unsigned char *p, unsigned int *out) {
	unsigned int v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= c - '0';
		else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
		else return 0;
	}
	*out = v;
	return 1;
}

static void put_rune(wg_buf *b, unsigned int c) {
	char u[4];
	if (c < 0x80) {
		wg_putc(b, (char)c);
	} else if (c < 0x800) {
		u[0] = (char)(0xc0 | c >> 6), u[1] = (char)(0x80 | (c & 0x3f));
		wg_put(b, u, 2);
	} else if (c < 0x10000) {
		u[0] = (char)(0xe0 | c >> 12), u[1] = (char)(0x80 | ((c >> 6) & 0x3f)), u[2] = (char)(0x80 | (c & 0x3f));
		wg_put(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | c >> 18), u[1] = (char)(0x80 | ((c >> 12) & 0x3f)), u[2] = (char)(0x80 | ((c >> 6) & 0x3f)), u[3] = (char)(0x80 | (c & 0x3f));
		wg_put(b, u, 4);
	}
}

/* str reads a JSON string at r->p (a '"'), decoding it into out if out is
 * not 0. Lone surrogates become U+FFFD, as in Go. */
static int str(jr *r, wg_buf *out) {
	if (r->p >= r->end || *r->p != '"') return fail(r, "expected a string");
	r->p++;
	while (r->p < r->end) {
		unsigned char c = *r->p++;
		if (c == '"') return 1;
		if (c < 0x20) return fail(r, "control character in string");
		if (c != '\\') {
			if (out) wg_putc(out, (char)c);
			continue;
		}
		if (r->p >= r->end) break;
		c = *r->p++;
		unsigned int u, lo;
		switch (c) {
		case '"': case '\\': case '/': break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u':
			if (r->end - r->p < 4 || !hex4(r->p, &u)) return fail(r, "invalid \\u escape");
			r->p += 4;
			if (u >= 0xd800 && u < 0xdc00) {
				if (r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u' && hex4(r->p + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
					r->p += 6;
					u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
				} else {
					u = 0xfffd;
				}
			} else if (u >= 0xdc00 && u < 0xe000) {
				u = 0xfffd;
			}
			if (out) put_rune(out, u);
			continue;
		default:
			return fail(r, "invalid escape in string");
		}
		if (out) wg_putc(out, (char)c);
	}
	return fail(r, "unterminated string");
}

static int digits(jr *r) {
	const unsigned char *s = r->p;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
	return r->p > s;
}

static int number(jr *r) {
	if (r->p < r->end && *r->p == '-') r->p++;
	if (r->p < r->end && *r->p == '0') r->p++;
	else if (!digits(r)) return fail(r, "invalid number");
	if (r->p < r->end && *r->p == '.') {
		r->p++;
		if (!digits(r)) return fail(r, "invalid number");
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
		if (!digits(r)) return fail(r, "invalid number");
	}
	return 1;
}

/* value skips one JSON value (validating it) after any whitespace. */
static int value(jr *r) {
	ws(r);
	if (r->p >= r->end) return fail(r, "unexpected end of JSON input");
	switch (*r->p) {
	case '"': return str(r, 0);
	case 't': return lit(r, "true");
	case 'f': return lit(r, "false");
	case 'n': return lit(r, "null");
	case '{': case '[': {
		char close = *r->p == '{' ? '}' : ']';
		int obj = close == '}';
		if (++r->depth > 1000) return fail(r, "exceeded max depth");
		r->p++;
		ws(r);
		if (r->p < r->end && *r->p == close) {
			r->p++;
			r->depth--;
			return 1;
		}
		for (;;) {
			if (obj) {
				ws(r);
				if (!str(r, 0)) return 0;
				ws(r);
				if (r->p >= r->end || *r->p++ != ':') return fail(r, "expected ':' after object key");
			}
			if (!value(r)) return 0;
			ws(r);
			if (r->p >= r->end) return fail(r, "unexpected end of JSON input");
			if (*r->p == ',') {
				r->p++;
				continue;
			}
			if (*r->p++ != close) return fail(r, obj ? "expected ',' or '}'" : "expected ',' or ']'");
			r->depth--;
			return 1;
		}
	}
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) return number(r);
		return fail(r, "invalid character looking for beginning of value");
	}
}

/* valid reports whether b is exactly one JSON value (and whitespace). */
static int valid(wg_bytes b, const char **why) {
	jr r = {(const unsigned char *)b.p, (const unsigned char *)b.p + b.n, 0, 0};
	if (value(&r)) {
		ws(&r);
		if (r.p != r.end) fail(&r, "invalid character after top-level value");
	}
	*why = r.err;
	return r.err == 0;
}

/* key_is compares an object key case-insensitively (ASCII), as encoding/json
 * matches struct fields. */
static int key_is(wg_bytes k, const char *name) {
	unsigned int i = 0;
	for (; name[i]; i++) {
		if (i >= k.n) return 0;
		char a = k.p[i], b = name[i];
		if (a >= 'A' && a <= 'Z') a += 'a' - 'A';
		if (a != b) return 0;
	}
	return i == k.n;
}

/* members walks the top-level object of a valid JSON text, calling fn with
 * each key (decoded) and the raw value. */
typedef int (*member_fn)(void *ctx, wg_bytes key, wg_bytes raw);
static int members(wg_bytes b, void *ctx, member_fn fn) {
	jr r = {(const unsigned char *)b.p, (const unsigned char *)b.p + b.n, 0, 0};
	ws(&r);
	if (r.p >= r.end || *r.p != '{') return 0;
	r.p++;
	for (;;) {
		ws(&r);
		if (r.p < r.end && *r.p == '}') return 1;
		if (r.p < r.end && *r.p == ',') r.p++, ws(&r);
		wg_buf k = {0};
		if (!str(&r, &k) || k.err) return 0;
		ws(&r);
		r.p++; /* ':' */
		ws(&r);
		const unsigned char *s = r.p;
		if (!value(&r)) return 0;
		int rc = fn(ctx, wg_buf_bytes(&k), (wg_bytes){(const char *)s, (unsigned int)(r.p - s)});
		if (rc) return rc;
	}
}

/* ---- The request -------------------------------------------------------- */

typedef struct {
	wg_bytes type, uid, room, text, client_id, session;
	int presence;
	const char *err;
} request;

/* field decodes a string field's raw value; null leaves it as it was. */
static void field(request *q, wg_bytes raw, wg_bytes *dst, const char *bad) {
	if (raw.n && raw.p[0] == 'n') return;
	if (!raw.n || raw.p[0] != '"') {
		if (!q->err) q->err = bad;
		return;
	}
	jr r = {(const unsigned char *)raw.p, (const unsigned char *)raw.p + raw.n, 0, 0};
	wg_buf b = {0};
	str(&r, &b);
	if (b.err) {
		q->err = "out of memory";
		return;
	}
	*dst = wg_buf_bytes(&b);
}

static int request_member(void *ctx, wg_bytes k, wg_bytes raw) {
	request *q = ctx;
	if (key_is(k, "type")) field(q, raw, &q->type, "cannot unmarshal into Go struct field request.type of type string");
	else if (key_is(k, "uid")) field(q, raw, &q->uid, "cannot unmarshal into Go struct field request.uid of type string");
	else if (key_is(k, "room")) field(q, raw, &q->room, "cannot unmarshal into Go struct field request.room of type string");
	else if (key_is(k, "text")) field(q, raw, &q->text, "cannot unmarshal into Go struct field request.text of type string");
	else if (key_is(k, "client_id")) field(q, raw, &q->client_id, "cannot unmarshal into Go struct field request.client_id of type string");
	else if (key_is(k, "session")) q->session = raw;
	else if (key_is(k, "presence")) {
		if (raw.n && raw.p[0] == 't') q->presence = 1;
		else if (raw.n && raw.p[0] == 'f') q->presence = 0;
		else if (!raw.n || raw.p[0] != 'n') {
			if (!q->err) q->err = "cannot unmarshal into Go struct field request.presence of type bool";
		}
	}
	return 0;
}

/* parse reads msg as Go's json.Unmarshal into the request struct would:
 * null is an empty request, anything but an object or null is an error. */
static const char *parse(wg_bytes msg, request *q) {
	const char *why;
	if (!valid(msg, &why)) return why;
	jr r = {(const unsigned char *)msg.p, (const unsigned char *)msg.p + msg.n, 0, 0};
	ws(&r);
	if (*r.p == 'n') return 0;
	if (*r.p != '{') return "cannot unmarshal non-object into Go value of type main.request";
	members(msg, q, request_member);
	return q->err;
}

/* ---- JSON writing (as encoding/json: <, >, & and U+2028/9 escaped,
 * invalid UTF-8 as U+FFFD) ------------------------------------------------ */

static int utf8_len(const unsigned char *p, unsigned int n) {
	unsigned char c = p[0];
	unsigned int need, min, cp;
	if (c < 0x80) return 1;
	if (c >= 0xc2 && c < 0xe0) need = 1, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c < 0xf0) need = 2, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c < 0xf5) need = 3, min = 0x10000, cp = c & 0x07;
	else return -1;
	if (n < need + 1) return -1;
	for (unsigned int i = 1; i <= need; i++) {
		if ((p[i] & 0xc0) != 0x80) return -1;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return -1;
	if (cp == 0x2028 || cp == 0x2029) return -2 - (int)(cp & 1); /* escape */
	return (int)need + 1;
}

static void jstr(wg_buf *b, wg_bytes s) {
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s.p;
	unsigned int n = s.n;
	wg_putc(b, '"');
	while (n) {
		unsigned char c = *p;
		if (c >= 0x80) {
			int l = utf8_len(p, n);
			if (l > 0) {
				wg_put(b, p, (unsigned int)l);
				p += l, n -= (unsigned int)l;
			} else if (l < -1) {
				wg_puts(b, l == -2 ? WG_LIT("\\u2028") : WG_LIT("\\u2029"));
				p += 3, n -= 3;
			} else {
				wg_puts(b, WG_LIT("\\ufffd"));
				p++, n--;
			}
			continue;
		}
		p++, n--;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			wg_put(b, e, 2);
		} else if (c == '\n') wg_puts(b, WG_LIT("\\n"));
		else if (c == '\r') wg_puts(b, WG_LIT("\\r"));
		else if (c == '\t') wg_puts(b, WG_LIT("\\t"));
		else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			wg_put(b, e, 6);
		} else wg_putc(b, (char)c);
	}
	wg_putc(b, '"');
}

/* kv appends ,"key": (or "key": first: the caller opens the object with '{'). */
static void key(wg_buf *b, const char *k) {
	if (b->n > 1) wg_putc(b, ',');
	wg_putc(b, '"');
	wg_puts(b, wg_cstr(k));
	wg_puts(b, WG_LIT("\":"));
}
static void kstr(wg_buf *b, const char *k, wg_bytes v) { key(b, k), jstr(b, v); }
static void kraw(wg_buf *b, const char *k, wg_bytes v) { key(b, k), wg_puts(b, v); }
static void kint(wg_buf *b, const char *k, long long v) { key(b, k), wg_put_int(b, v); }
static void kbool(wg_buf *b, const char *k, int v) { key(b, k), wg_puts(b, v ? WG_LIT("true") : WG_LIT("false")); }
static void klist(wg_buf *b, const char *k, wg_bytes list) {
	wg_bytes e;
	int first = 1;
	key(b, k);
	wg_putc(b, '[');
	while (wg_list_next(&list, &e) > 0) {
		if (!first) wg_putc(b, ',');
		first = 0;
		jstr(b, e);
	}
	wg_putc(b, ']');
}
static wg_buf obj(const char *type) {
	wg_buf b = {0};
	wg_putc(&b, '{');
	kstr(&b, "type", wg_cstr(type));
	return b;
}

/* ---- Replies ------------------------------------------------------------ */

/* Errors are negative WG_E* codes, or E_USER with the text in user_err. */
#define E_USER (-1000)
static wg_bytes user_err;
static int user(wg_bytes msg) {
	user_err = msg;
	return E_USER;
}

static void warn(wg_bytes a, wg_bytes b, wg_bytes c) {
	wg_buf m = {0};
	wg_puts(&m, a), wg_puts(&m, b), wg_puts(&m, c);
	wg_log(WG_WARN, wg_buf_bytes(&m));
}

/* err_text is the Go SDK's error text for a code. */
static wg_bytes err_text(int e) {
	if (e == E_USER) return user_err;
	wg_buf b = {0};
	wg_puts(&b, WG_LIT("wasmgate: "));
	wg_puts(&b, wg_cstr(wg_strerror(e)));
	return wg_buf_bytes(&b);
}

static int reply(wg_bytes id, wg_buf *b) {
	wg_putc(b, '}');
	if (b->err) return b->err;
	int rc = wg_send(id, wg_buf_bytes(b), 0);
	return rc < 0 ? rc : 0;
}

static void reply_error(wg_bytes id, wg_bytes msg) {
	wg_buf b = obj("error");
	kstr(&b, "error", msg);
	int rc = reply(id, &b);
	if (rc < 0) warn(WG_LIT("chat: cannot send error to "), id, err_text(rc));
}

static int need(const char *name, wg_bytes v) {
	if (v.n) return 0;
	wg_buf b = {0};
	wg_puts(&b, wg_cstr(name));
	wg_puts(&b, WG_LIT(" required"));
	return user(wg_buf_bytes(&b));
}

#define TRY(x) \
	do { \
		int rc_ = (x); \
		if (rc_ < 0) return rc_; \
	} while (0)

/* ---- Rooms in the session ----------------------------------------------- */

/* mark_room records in the client's session whether it is in room. */
static int mark_room(wg_bytes id, wg_bytes room, int in) {
	wg_buf b = {0};
	wg_puts(&b, WG_LIT("{\"rooms\":{"));
	jstr(&b, room);
	wg_puts(&b, in ? WG_LIT(":true}}") : WG_LIT(":false}}"));
	if (b.err) return b.err;
	return wg_update_session(id, wg_buf_bytes(&b));
}

typedef struct {
	wg_bytes rooms_raw;
	wg_bytes *list;
	int n, cap;
} rooms;

static int session_member(void *ctx, wg_bytes k, wg_bytes raw) {
	if (key_is(k, "rooms")) ((rooms *)ctx)->rooms_raw = raw;
	return 0;
}

static int room_member(void *ctx, wg_bytes k, wg_bytes raw) {
	rooms *rs = ctx;
	if (raw.n != 4 || raw.p[0] != 't') return 0;
	for (int i = 0; i < rs->n; i++)
		if (wg_eq(rs->list[i], k)) return 0;
	if (rs->n == rs->cap) {
		int cap = rs->cap ? rs->cap * 2 : 16;
		wg_bytes *l = wg_alloc((unsigned int)cap * sizeof *l);
		if (!l) return -WG_ENOMEM;
		memcpy(l, rs->list, (unsigned long)rs->n * sizeof *l);
		rs->list = l;
		rs->cap = cap;
	}
	rs->list[rs->n++] = k;
	return 0;
}

static int less(wg_bytes a, wg_bytes b) {
	unsigned int n = a.n < b.n ? a.n : b.n;
	int c = memcmp(a.p, b.p, n);
	return c < 0 || (c == 0 && a.n < b.n);
}

/* session_rooms lists the rooms the client's session says it is in,
 * sorted. A session whose "rooms" is not an object lists none. */
static int session_rooms(wg_bytes id, rooms *rs) {
	wg_bytes s;
	TRY(wg_session(id, &s));
	members(s, rs, session_member);
	if (rs->rooms_raw.n && rs->rooms_raw.p[0] == '{') TRY(members(rs->rooms_raw, rs, room_member));
	for (int i = 1; i < rs->n; i++)
		for (int j = i; j > 0 && less(rs->list[j], rs->list[j - 1]); j--) {
			wg_bytes t = rs->list[j];
			rs->list[j] = rs->list[j - 1];
			rs->list[j - 1] = t;
		}
	return 0;
}

/* ---- Requests ----------------------------------------------------------- */

static int login(wg_bytes id, request *q) {
	TRY(need("uid", q->uid));
	TRY(wg_bind_uid(id, q->uid));
	wg_buf b = obj("login");
	kbool(&b, "ok", 1), kstr(&b, "uid", q->uid);
	return reply(id, &b);
}

/* ---- Presence (chat/main.go's header) ----------------------------------- */

static wg_bytes presence_key(wg_bytes id) {
	wg_buf b = {0};
	wg_puts(&b, WG_LIT("presence:"));
	wg_puts(&b, id);
	return wg_buf_bytes(&b);
}

/* presence_rooms lists the rooms the client joined with presence: the
 * object {"r":true} stored under presence_key. */
static int presence_rooms(wg_bytes id, rooms *rs) {
	wg_bytes v;
	if (wg_kv_get(presence_key(id), &v) < 0) return 0;
	if (v.n && v.p[0] == '{') TRY(members(v, rs, room_member));
	return 0;
}

/* set_presence_rooms stores rs's rooms but skip (or deletes the key). */
static int set_presence_rooms(wg_bytes id, rooms *rs, wg_bytes skip) {
	wg_buf b = {0};
	int n = 0;
	wg_putc(&b, '{');
	for (int i = 0; i < rs->n; i++) {
		if (wg_eq(rs->list[i], skip)) continue;
		if (n++) wg_putc(&b, ',');
		jstr(&b, rs->list[i]);
		wg_puts(&b, WG_LIT(":true"));
	}
	wg_putc(&b, '}');
	if (b.err) return b.err;
	if (!n) {
		wg_kv_delete(presence_key(id));
		return 0;
	}
	int rc = wg_kv_set(presence_key(id), wg_buf_bytes(&b), 0);
	return rc < 0 ? rc : 0;
}

/* presence_of builds the room's presence message (event 0: none). */
static int presence_of(wg_bytes room, const char *event, wg_bytes id, wg_buf *b) {
	wg_bytes uids;
	int n;
	*b = obj("presence");
	kstr(b, "room", room);
	if (event) kstr(b, "event", wg_cstr(event)), kstr(b, "client_id", id);
	TRY(wg_uids_by_group(room, &uids));
	klist(b, "uids", uids);
	TRY(n = wg_client_count_by_group(room));
	kint(b, "clients", n);
	wg_putc(b, '}');
	return b->err;
}

static int announce(wg_bytes room, const char *event, wg_bytes id) {
	wg_buf b;
	TRY(presence_of(room, event, id, &b));
	TRY(wg_send_to_group(wg_list1(room), wg_buf_bytes(&b), 0, (wg_bytes){0, 0}));
	return 0;
}

static int presence(wg_bytes id, request *q) {
	TRY(need("room", q->room));
	wg_buf b;
	TRY(presence_of(q->room, 0, id, &b));
	int rc = wg_send(id, wg_buf_bytes(&b), 0);
	return rc < 0 ? rc : 0;
}

static void presence_closed(wg_bytes id) {
	rooms rs = {0};
	if (presence_rooms(id, &rs) < 0 || !rs.n) return;
	wg_kv_delete(presence_key(id));
	for (int i = 1; i < rs.n; i++)
		for (int j = i; j > 0 && less(rs.list[j], rs.list[j - 1]); j--) {
			wg_bytes t = rs.list[j];
			rs.list[j] = rs.list[j - 1];
			rs.list[j - 1] = t;
		}
	for (int i = 0; i < rs.n; i++) {
		int rc = announce(rs.list[i], "close", id);
		if (rc < 0) {
			wg_buf m = {0};
			wg_puts(&m, WG_LIT("chat: presence of ")), wg_puts(&m, id), wg_puts(&m, WG_LIT(" in "));
			wg_puts(&m, rs.list[i]), wg_puts(&m, WG_LIT(": ")), wg_puts(&m, err_text(rc));
			wg_log(WG_WARN, wg_buf_bytes(&m));
		}
	}
}

/* ---- Requests, continued ------------------------------------------------ */

static int join(wg_bytes id, request *q) {
	TRY(need("room", q->room));
	TRY(wg_join_group(id, q->room));
	TRY(mark_room(id, q->room, 1));
	wg_buf b = obj("joined");
	kstr(&b, "room", q->room);
	TRY(reply(id, &b));
	if (!q->presence) return 0;
	rooms rs = {0};
	TRY(presence_rooms(id, &rs));
	TRY(room_member(&rs, q->room, WG_LIT("true")));
	TRY(set_presence_rooms(id, &rs, (wg_bytes){0, 0}));
	return announce(q->room, "join", id);
}

static int leave(wg_bytes id, request *q) {
	TRY(need("room", q->room));
	TRY(wg_leave_group(id, q->room));
	TRY(mark_room(id, q->room, 0));
	wg_buf b = obj("left");
	kstr(&b, "room", q->room);
	TRY(reply(id, &b));
	rooms rs = {0};
	TRY(presence_rooms(id, &rs));
	int had = 0;
	for (int i = 0; i < rs.n; i++) had |= wg_eq(rs.list[i], q->room);
	if (!had) return 0;
	TRY(set_presence_rooms(id, &rs, q->room));
	return announce(q->room, "leave", id);
}

static int say(wg_bytes id, request *q) {
	rooms rs = {0};
	wg_bytes uid, members_;
	TRY(session_rooms(id, &rs));
	TRY(wg_uid(id, &uid));
	int sent = 0;
	for (int i = 0; i < rs.n; i++) {
		/* The session may be stale: another client may have ungrouped the
		 * room. Never send to a room the sender is no longer in. */
		TRY(wg_client_ids_by_group(rs.list[i], &members_));
		if (!wg_list_contains(members_, id)) {
			TRY(mark_room(id, rs.list[i], 0));
			continue;
		}
		wg_buf b = obj("say");
		kstr(&b, "room", rs.list[i]), kstr(&b, "from", id), kstr(&b, "uid", uid), kstr(&b, "text", q->text);
		wg_putc(&b, '}');
		if (b.err) return b.err;
		TRY(wg_send_to_group(wg_list1(rs.list[i]), wg_buf_bytes(&b), 0, (wg_bytes){0, 0}));
		sent++;
	}
	return sent ? 0 : user(WG_LIT("not in any room"));
}

static int to_uid(wg_bytes id, request *q) {
	TRY(need("uid", q->uid));
	wg_buf b = obj("to_uid");
	kstr(&b, "from", id), kstr(&b, "text", q->text);
	wg_putc(&b, '}');
	if (b.err) return b.err;
	TRY(wg_send_to_uid(wg_list1(q->uid), wg_buf_bytes(&b), 0));
	return 0;
}

static int ungroup(request *q) {
	TRY(need("room", q->room));
	return wg_ungroup(q->room);
}

static int whoami(wg_bytes id) {
	wg_bytes uid, s;
	TRY(wg_uid(id, &uid));
	TRY(wg_session(id, &s));
	wg_buf b = obj("whoami");
	kstr(&b, "client_id", id), kstr(&b, "uid", uid), kraw(&b, "session", s);
	return reply(id, &b);
}

static int set_session(wg_bytes id, request *q, int update) {
	if (!q->session.n || q->session.p[0] != '{') return user(WG_LIT("session must be a JSON object"));
	TRY(update ? wg_update_session(id, q->session) : wg_set_session(id, q->session));
	wg_bytes s;
	TRY(wg_session(id, &s));
	wg_buf b = obj("session");
	kraw(&b, "session", s);
	return reply(id, &b);
}

static int stats(wg_bytes id, request *q) {
	wg_bytes l, empty = {0, 0};
	int n;
	wg_buf b = obj("stats");
	TRY(n = wg_all_client_count());
	kint(&b, "all_clients", n);
	TRY(wg_all_client_ids(&l));
	klist(&b, "all_client_ids", l);
	TRY(wg_all_uids(&l));
	klist(&b, "all_uids", l);
	TRY(n = wg_all_uid_count());
	kint(&b, "uid_count", n);
	TRY(wg_all_groups(&l));
	klist(&b, "groups", l);
	kstr(&b, "room", q->room);
	wg_bytes rc = empty, ru = empty;
	int rcount = 0, rucount = 0;
	if (q->room.n) {
		TRY(wg_client_ids_by_group(q->room, &rc));
		TRY(rcount = wg_client_count_by_group(q->room));
		TRY(wg_uids_by_group(q->room, &ru));
		TRY(rucount = wg_uid_count_by_group(q->room));
	}
	klist(&b, "room_clients", rc), kint(&b, "room_count", rcount);
	klist(&b, "room_uids", ru), kint(&b, "room_uid_count", rucount);
	wg_bytes uc = empty;
	int online = 0;
	if (q->uid.n) {
		kstr(&b, "uid", q->uid);
		TRY(wg_client_ids_by_uid(q->uid, &uc));
		TRY(online = wg_is_uid_online(q->uid));
	}
	klist(&b, "uid_clients", uc), kbool(&b, "uid_online", online);
	return reply(id, &b);
}

static int logout(wg_bytes id) {
	wg_bytes uid;
	TRY(wg_uid(id, &uid));
	if (!uid.n) return user(WG_LIT("not logged in"));
	TRY(wg_unbind_uid(id, uid));
	wg_buf b = obj("logout");
	kbool(&b, "ok", 1), kstr(&b, "uid", uid);
	return reply(id, &b);
}

static int broadcast(wg_bytes id, request *q) {
	wg_buf b = obj("broadcast");
	kstr(&b, "from", id), kstr(&b, "text", q->text);
	wg_putc(&b, '}');
	if (b.err) return b.err;
	TRY(wg_send_to_all(wg_buf_bytes(&b), 0, (wg_bytes){0, 0}, wg_list1(id)));
	return 0;
}

static int online(wg_bytes id, request *q) {
	int on;
	TRY(need("client_id", q->client_id));
	TRY(on = wg_is_online(q->client_id));
	wg_buf b = obj("online");
	kstr(&b, "client_id", q->client_id), kbool(&b, "online", on);
	return reply(id, &b);
}

static int kick(request *q) {
	TRY(need("client_id", q->client_id));
	wg_buf b = obj("kicked");
	kstr(&b, "error", q->text);
	wg_putc(&b, '}');
	if (b.err) return b.err;
	return wg_close_client(q->client_id, wg_buf_bytes(&b), 0);
}

/* ---- Events ------------------------------------------------------------- */

static wg_bytes rate_key(wg_bytes id) {
	wg_buf b = {0};
	wg_puts(&b, WG_LIT("rate:"));
	wg_puts(&b, id);
	return wg_buf_bytes(&b);
}

/* rate_limited counts the message in the client's current window. The
 * window starts with the first message: kv_incr sets the TTL only when it
 * creates the key. A failure (the store is full, say) lets it through. */
static int rate_limited(wg_bytes id) {
	if (rate_limit == 0) return 0;
	long long n;
	int rc = wg_kv_incr(rate_key(id), 1, RATE_WINDOW_MS, &n);
	if (rc < 0) {
		wg_buf m = {0};
		wg_puts(&m, WG_LIT("chat: rate limit for ")), wg_puts(&m, id), wg_puts(&m, WG_LIT(": ")), wg_puts(&m, err_text(rc));
		wg_log(WG_WARN, wg_buf_bytes(&m));
		return 0;
	}
	return n > rate_limit;
}

static int dispatch(wg_bytes id, request *q) {
	wg_bytes t = q->type;
	if (wg_eq(t, WG_LIT("login"))) return login(id, q);
	if (wg_eq(t, WG_LIT("join"))) return join(id, q);
	if (wg_eq(t, WG_LIT("leave"))) return leave(id, q);
	if (wg_eq(t, WG_LIT("say"))) return say(id, q);
	if (wg_eq(t, WG_LIT("to_uid"))) return to_uid(id, q);
	if (wg_eq(t, WG_LIT("ungroup"))) return ungroup(q);
	if (wg_eq(t, WG_LIT("whoami"))) return whoami(id);
	if (wg_eq(t, WG_LIT("session_set"))) return set_session(id, q, 0);
	if (wg_eq(t, WG_LIT("session_update"))) return set_session(id, q, 1);
	if (wg_eq(t, WG_LIT("stats"))) return stats(id, q);
	if (wg_eq(t, WG_LIT("logout"))) return logout(id);
	if (wg_eq(t, WG_LIT("broadcast"))) return broadcast(id, q);
	if (wg_eq(t, WG_LIT("online"))) return online(id, q);
	if (wg_eq(t, WG_LIT("kick"))) return kick(q);
	if (wg_eq(t, WG_LIT("presence"))) return presence(id, q);
	if (!t.n) return user(WG_LIT("missing type"));
	wg_buf b = {0};
	wg_puts(&b, WG_LIT("unknown type "));
	jstr(&b, t);
	return user(wg_buf_bytes(&b));
}

static int on_message(wg_bytes id, wg_bytes msg, int flags) {
	(void)flags;
	if (rate_limited(id)) {
		reply_error(id, WG_LIT("rate limited"));
		return 0;
	}
	request q = {0};
	const char *why = parse(msg, &q);
	if (why) {
		wg_buf b = {0};
		wg_puts(&b, WG_LIT("bad json: "));
		wg_puts(&b, wg_cstr(why));
		reply_error(id, wg_buf_bytes(&b));
		return 0;
	}
	int rc = dispatch(id, &q);
	if (rc < 0) reply_error(id, err_text(rc));
	return 0;
}
WASMGATE_ON_MESSAGE(on_message)

static int on_close(wg_bytes id) {
	wg_kv_delete(rate_key(id));
	presence_closed(id);
	return 0;
}
WASMGATE_ON_CLOSE(on_close)

/* parse_limit reads a rate_limit value as strconv.ParseInt (base 10, an
 * optional sign) and requires it to be >= 0. */
static int parse_limit(wg_bytes v, long long *out) {
	unsigned int i = 0;
	int neg = 0;
	unsigned long long n = 0;
	if (i < v.n && (v.p[i] == '+' || v.p[i] == '-')) neg = v.p[i++] == '-';
	if (i == v.n) return 0;
	for (; i < v.n; i++) {
		if (v.p[i] < '0' || v.p[i] > '9') return 0;
		if (n > 922337203685477580ull) return 0;
		n = n * 10 + (unsigned long long)(v.p[i] - '0');
		if (n > 0x7fffffffffffffffull) return 0;
	}
	if (neg && n) return 0;
	*out = (long long)n;
	return 1;
}

static int config_error(const char *what, wg_bytes v) {
	wg_buf m = {0};
	wg_puts(&m, wg_cstr(what));
	jstr(&m, v);
	wg_log(WG_ERROR, wg_buf_bytes(&m));
	return 1; /* fails the instance: the server refuses the module */
}

/* on_start reads the module config: space- or comma-separated key=value
 * pairs, of which only rate_limit is known. */
static int on_start(wg_bytes config) {
	unsigned int i = 0;
	while (i < config.n) {
		while (i < config.n && (config.p[i] == ' ' || config.p[i] == ',')) i++;
		unsigned int s = i;
		while (i < config.n && config.p[i] != ' ' && config.p[i] != ',') i++;
		if (i == s) break;
		wg_bytes f = {config.p + s, i - s}, k = f, v = {0, 0};
		for (unsigned int j = 0; j < f.n; j++)
			if (f.p[j] == '=') {
				k.n = j;
				v = (wg_bytes){f.p + j + 1, f.n - j - 1};
				break;
			}
		if (!wg_eq(k, WG_LIT("rate_limit"))) return config_error("chat config: unknown key ", k);
		if (!parse_limit(v, &rate_limit)) return config_error("chat config: rate_limit must be a number >= 0, not ", v);
	}
	return 0;
}
WASMGATE_ON_START(on_start)
