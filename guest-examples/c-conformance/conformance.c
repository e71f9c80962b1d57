/* c-conformance: the C build of the conformance handler
 * (docs/SDK-CONFORMANCE.md). Every text message is a command naming a host
 * function and its arguments; the handler makes the call through wasmgate.h
 * and answers "TAG ok VALUES…", "TAG err N" or "TAG bad" to the sender.
 * guest-examples/conformance (Go) is the reference; the suite
 * server/conformance_sdk_test.go checks that both answer the same.
 *
 * Build: clang --target=wasm32 -Oz -nostdlib -ffreestanding -Wl,--no-entry \
 *              -I ../c -o c-conformance.wasm conformance.c
 */
#include "wasmgate.h"

/* config is the module config on_start received (every instance gets it). */
static wg_bytes config;
static char config_copy[1024];

/* ---- The protocol's encodings ------------------------------------------- */

static int unhex(char c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* dec decodes an argument into the arena: "-" is empty, "*N" N bytes of
 * 'x', anything else percent-decoded. It returns 0 if malformed. */
static int dec(wg_bytes s, wg_bytes *out) {
	wg_buf b = {0};
	if (s.n == 1 && s.p[0] == '-') {
		*out = (wg_bytes){0, 0};
		return 1;
	}
	if (s.n > 0 && s.p[0] == '*') {
		if (s.n == 1) return 0;
		unsigned int n = 0;
		for (unsigned int i = 1; i < s.n; i++) {
			if (s.p[i] < '0' || s.p[i] > '9' || n > 100000000) return 0;
			n = n * 10 + (unsigned int)(s.p[i] - '0');
		}
		char *p = wg_alloc(n ? n : 1);
		if (!p) return 0;
		memset(p, 'x', n);
		*out = (wg_bytes){p, n};
		return 1;
	}
	for (unsigned int i = 0; i < s.n; i++) {
		char c = s.p[i];
		if (c == '%') {
			if (i + 2 >= s.n) return 0;
			int hi = unhex(s.p[i + 1]), lo = unhex(s.p[i + 2]);
			if (hi < 0 || lo < 0) return 0;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		wg_putc(&b, c);
	}
	*out = wg_buf_bytes(&b);
	return !b.err;
}

/* enc appends a value: "-" if empty, else every byte outside '!'..'~', and
 * '%', ',' and '-', as %XX. */
static void enc(wg_buf *b, wg_bytes v) {
	static const char hex[] = "0123456789ABCDEF";
	if (v.n == 0) {
		wg_putc(b, '-');
		return;
	}
	for (unsigned int i = 0; i < v.n; i++) {
		unsigned char c = (unsigned char)v.p[i];
		if (c < '!' || c > '~' || c == '%' || c == ',' || c == '-') {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			wg_put(b, e, 3);
		} else {
			wg_putc(b, (char)c);
		}
	}
}

/* enc_list appends a list: "-" if empty, else its entries joined by ','. */
static void enc_list(wg_buf *b, wg_bytes list) {
	wg_bytes e;
	if (list.n == 0) {
		wg_putc(b, '-');
		return;
	}
	for (int first = 1; wg_list_next(&list, &e) > 0; first = 0) {
		if (!first) wg_putc(b, ',');
		enc(b, e);
	}
}

/* ---- Arguments ------------------------------------------------------------ */

#define MAX_ARGS 8

typedef struct {
	wg_bytes f[MAX_ARGS];
	int n, i, bad;
} args;

static wg_bytes next(args *a) {
	if (a->i >= a->n) {
		a->bad = 1;
		return (wg_bytes){0, 0};
	}
	return a->f[a->i++];
}

static wg_bytes bytes(args *a) {
	wg_bytes v = {0, 0};
	if (!dec(next(a), &v)) a->bad = 1;
	return v;
}

static long long num(args *a) {
	wg_bytes s = next(a);
	unsigned int i = 0;
	int neg = s.n > 0 && s.p[0] == '-';
	unsigned long long v = 0;
	if (neg) i++;
	if (i == s.n) a->bad = 1;
	for (; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9' || v > 922337203685477580ull) {
			a->bad = 1;
			return 0;
		}
		v = v * 10 + (unsigned long long)(s.p[i] - '0');
	}
	return neg ? -(long long)v : (long long)v;
}

/* list decodes a list argument ("-": empty; else entries split at ',')
 * into its ABI encoding. */
static wg_bytes list(args *a) {
	wg_bytes s = next(a), e;
	wg_buf b = {0};
	if (s.n == 1 && s.p[0] == '-') return (wg_bytes){0, 0};
	unsigned int start = 0;
	for (unsigned int i = 0; i <= s.n; i++) {
		if (i < s.n && s.p[i] != ',') continue;
		if (!dec((wg_bytes){s.p + start, i - start}, &e)) a->bad = 1;
		wg_list_add(&b, e);
		start = i + 1;
	}
	return wg_buf_bytes(&b);
}

/* ready reports whether every argument was read and well-formed. */
static int ready(args *a) { return !a->bad && a->i == a->n; }

/* ---- Answers --------------------------------------------------------------- */

enum { NONE, INT, BOOL, DATA, LIST };

/* answer appends "ok" and the value of kind k, or "err N" if rc < 0. */
static void answer(wg_buf *b, long long rc, int k, wg_bytes v) {
	if (rc < 0) {
		wg_puts(b, WG_LIT("err "));
		wg_put_int(b, -rc);
		return;
	}
	wg_puts(b, WG_LIT("ok"));
	if (k == NONE) return;
	wg_putc(b, ' ');
	if (k == INT) wg_put_int(b, rc);
	else if (k == BOOL) wg_putc(b, rc ? '1' : '0');
	else if (k == DATA) enc(b, v);
	else enc_list(b, v);
}

/* closing appends the closing state (uid session groups) of a list. */
static void closing(wg_buf *b, wg_bytes st) {
	wg_bytes uid = {0, 0}, session = {0, 0};
	wg_list_next(&st, &uid);
	wg_list_next(&st, &session);
	enc(b, uid);
	wg_putc(b, ' ');
	enc(b, session);
	wg_putc(b, ' ');
	enc_list(b, st);
}

#define IS(name) wg_eq(cmd, WG_LIT(name))

/* run executes one command and appends its answer to out. */
static void run(wg_bytes cmd, args *a, wg_buf *out) {
	wg_bytes id, x, y, v = {0, 0};
	long long rc = 0, n, m;
	int k = NONE, flags;
	if (IS("config")) {
		if (!ready(a)) goto bad;
		rc = 0, k = DATA, v = config;
	} else if (IS("send_to_client") || IS("close_client")) {
		id = bytes(a), x = bytes(a), flags = (int)num(a);
		if (!ready(a)) goto bad;
		rc = IS("send_to_client") ? wg_send(id, x, flags) : wg_close_client(id, x, flags);
	} else if (IS("send_to_all")) {
		x = bytes(a), flags = (int)num(a), id = list(a), y = list(a);
		if (!ready(a)) goto bad;
		rc = wg_send_to_all(x, flags, id, y), k = INT;
	} else if (IS("send_to_uid")) {
		id = list(a), x = bytes(a), flags = (int)num(a);
		if (!ready(a)) goto bad;
		rc = wg_send_to_uid(id, x, flags), k = INT;
	} else if (IS("send_to_group")) {
		id = list(a), x = bytes(a), flags = (int)num(a), y = list(a);
		if (!ready(a)) goto bad;
		rc = wg_send_to_group(id, x, flags, y), k = INT;
	} else if (IS("is_online") || IS("is_uid_online")) {
		x = bytes(a);
		if (!ready(a)) goto bad;
		rc = IS("is_online") ? wg_is_online(x) : wg_is_uid_online(x), k = BOOL;
	} else if (IS("bind_uid") || IS("unbind_uid") || IS("join_group") || IS("leave_group") || IS("set_session") || IS("update_session")) {
		id = bytes(a), x = bytes(a);
		if (!ready(a)) goto bad;
		if (IS("bind_uid")) rc = wg_bind_uid(id, x);
		else if (IS("unbind_uid")) rc = wg_unbind_uid(id, x);
		else if (IS("join_group")) rc = wg_join_group(id, x);
		else if (IS("leave_group")) rc = wg_leave_group(id, x);
		else if (IS("set_session")) rc = wg_set_session(id, x);
		else rc = wg_update_session(id, x);
	} else if (IS("get_client_id_by_uid") || IS("get_client_id_list_by_group") || IS("get_uid_list_by_group")) {
		x = bytes(a);
		if (!ready(a)) goto bad;
		if (IS("get_client_id_by_uid")) rc = wg_client_ids_by_uid(x, &v);
		else if (IS("get_client_id_list_by_group")) rc = wg_client_ids_by_group(x, &v);
		else rc = wg_uids_by_group(x, &v);
		k = LIST;
	} else if (IS("get_uid_by_client_id") || IS("get_session") || IS("kv_get")) {
		x = bytes(a);
		if (!ready(a)) goto bad;
		if (IS("get_uid_by_client_id")) rc = wg_uid(x, &v);
		else if (IS("get_session")) rc = wg_session(x, &v);
		else rc = wg_kv_get(x, &v);
		k = DATA;
	} else if (IS("get_all_client_id_count") || IS("get_all_uid_count")) {
		if (!ready(a)) goto bad;
		rc = IS("get_all_client_id_count") ? wg_all_client_count() : wg_all_uid_count(), k = INT;
	} else if (IS("get_all_client_id_list") || IS("get_all_uid_list") || IS("get_all_group_id_list")) {
		if (!ready(a)) goto bad;
		if (IS("get_all_client_id_list")) rc = wg_all_client_ids(&v);
		else if (IS("get_all_uid_list")) rc = wg_all_uids(&v);
		else rc = wg_all_groups(&v);
		k = LIST;
	} else if (IS("ungroup") || IS("get_client_id_count_by_group") || IS("get_uid_count_by_group")) {
		x = bytes(a);
		if (!ready(a)) goto bad;
		if (IS("ungroup")) rc = wg_ungroup(x);
		else rc = IS("get_client_id_count_by_group") ? wg_client_count_by_group(x) : wg_uid_count_by_group(x), k = INT;
	} else if (IS("closing_state")) { /* unsupported outside on_close */
		if (!ready(a)) goto bad;
		rc = wg_closing_state(&v);
		if (rc >= 0) {
			wg_puts(out, WG_LIT("ok "));
			closing(out, v);
			return;
		}
	} else if (IS("log")) {
		n = num(a), x = bytes(a);
		if (!ready(a)) goto bad;
		rc = wg_log((int)n, x);
	} else if (IS("now")) {
		if (!ready(a)) goto bad;
		rc = wg_now(), k = INT;
	} else if (IS("kv_set")) {
		x = bytes(a), y = bytes(a), n = num(a);
		if (!ready(a)) goto bad;
		rc = wg_kv_set(x, y, n);
	} else if (IS("kv_delete")) {
		x = bytes(a);
		if (!ready(a)) goto bad;
		rc = wg_kv_delete(x), k = BOOL;
	} else if (IS("kv_incr")) {
		long long sum = 0;
		x = bytes(a), n = num(a), m = num(a);
		if (!ready(a)) goto bad;
		rc = wg_kv_incr(x, n, m, &sum);
		if (rc >= 0) { /* the sum may be negative: not an error */
			wg_puts(out, WG_LIT("ok "));
			wg_put_int(out, sum);
			return;
		}
	} else if (IS("kv_cas")) {
		id = bytes(a), x = bytes(a), y = bytes(a), n = num(a), m = num(a);
		if (!ready(a)) goto bad;
		rc = wg_kv_cas(id, x, y, n, m == 1 ? WG_KV_ABSENT : 0), k = BOOL;
	} else if (IS("task") || IS("task_result")) {
		x = bytes(a);
		if (!ready(a)) goto bad;
		if (IS("task")) rc = wg_task(x), k = INT;
		else rc = wg_task_result(x);
	} else if (IS("set_timer")) {
		n = num(a), x = bytes(a);
		if (!ready(a)) goto bad;
		rc = wg_set_timer(n, x), k = INT;
	} else if (IS("clear_timer")) {
		n = num(a);
		if (!ready(a)) goto bad;
		rc = wg_clear_timer(n), k = BOOL;
	} else {
		goto bad;
	}
	answer(out, rc, k, v);
	return;
bad:
	wg_puts(out, WG_LIT("bad"));
}

/* ---- Events ------------------------------------------------------------------ */

static int on_start(wg_bytes cfg) {
	if (cfg.n > sizeof config_copy) return 1;
	memcpy(config_copy, cfg.p, cfg.n);
	config = (wg_bytes){config_copy, cfg.n};
	return 0;
}
WASMGATE_ON_START(on_start)

/* query_value finds key=value in a query string (no decoding: the suite
 * only sends digits there). */
static int query_value(wg_bytes q, wg_bytes key, wg_bytes *out) {
	unsigned int i = 0;
	while (i < q.n) {
		unsigned int s = i;
		while (i < q.n && q.p[i] != '&') i++;
		wg_bytes part = {q.p + s, i - s};
		i++;
		if (part.n > key.n && part.p[key.n] == '=' && memcmp(part.p, key.p, key.n) == 0) {
			*out = (wg_bytes){part.p + key.n + 1, part.n - key.n - 1};
			return 1;
		}
	}
	return 0;
}

/* on_handshake refuses with the status in ?refuse=N, and otherwise keeps
 * what it saw for on_connect (which may run on another instance). */
static int on_handshake(wg_bytes fields) {
	wg_bytes id = {0, 0}, method = {0, 0}, path = {0, 0}, query = {0, 0}, conf = {0, 0}, refuse;
	wg_handshake_field(fields, 0, (wg_bytes){0, 0}, &id);
	wg_handshake_field(fields, 1, (wg_bytes){0, 0}, &method);
	wg_handshake_field(fields, 2, (wg_bytes){0, 0}, &path);
	wg_handshake_field(fields, 3, (wg_bytes){0, 0}, &query);
	wg_handshake_field(fields, 0, WG_LIT("x-conf"), &conf);
	if (query_value(query, WG_LIT("refuse"), &refuse)) {
		args a = {{refuse}, 1, 0, 0};
		long long n = num(&a);
		if (!a.bad) return (int)n;
	}
	wg_buf key = {0}, seen = {0};
	wg_puts(&key, WG_LIT("hs:"));
	wg_puts(&key, id);
	enc(&seen, method);
	wg_putc(&seen, ' ');
	enc(&seen, path);
	wg_putc(&seen, ' ');
	enc(&seen, query);
	wg_putc(&seen, ' ');
	enc(&seen, conf);
	wg_kv_set(wg_buf_bytes(&key), wg_buf_bytes(&seen), 60000);
	return 0;
}
WASMGATE_ON_HANDSHAKE(on_handshake)

static int on_connect(wg_bytes id) {
	wg_buf key = {0}, b = {0};
	wg_bytes seen;
	wg_puts(&key, WG_LIT("hs:"));
	wg_puts(&key, id);
	if (wg_kv_get(wg_buf_bytes(&key), &seen) < 0) seen = WG_LIT("-");
	wg_kv_delete(wg_buf_bytes(&key));
	wg_puts(&b, WG_LIT("hello "));
	wg_puts(&b, id);
	wg_putc(&b, ' ');
	wg_puts(&b, seen);
	wg_send(id, wg_buf_bytes(&b), 0);
	return 0;
}
WASMGATE_ON_CONNECT(on_connect)

/* on_message runs one command; a binary message is echoed as binary. */
static int on_message(wg_bytes id, wg_bytes msg, int flags) {
	if (flags & WG_BINARY) return wg_send(id, msg, WG_BINARY) < 0;
	args a = {{{0, 0}}, 0, 0, 0};
	wg_bytes f[MAX_ARGS + 2];
	int nf = 0;
	unsigned int s = 0;
	for (unsigned int i = 0; i <= msg.n; i++) {
		if (i < msg.n && msg.p[i] != ' ') continue;
		if (nf == MAX_ARGS + 2) {
			a.bad = 1;
			break;
		}
		f[nf++] = (wg_bytes){msg.p + s, i - s};
		s = i + 1;
	}
	wg_buf out = {0};
	wg_puts(&out, f[0]);
	wg_putc(&out, ' ');
	if (nf < 2 || a.bad) {
		wg_puts(&out, WG_LIT("bad"));
	} else {
		for (int i = 2; i < nf; i++) a.f[a.n++] = f[i];
		run(f[1], &a, &out);
	}
	return wg_send(id, wg_buf_bytes(&out), 0) < 0;
}
WASMGATE_ON_MESSAGE(on_message)

/* watch sends an event line to the "watch" group: on_close, on_finish and
 * on_timer belong to no client that could be answered. */
static void watch(wg_buf *b) { wg_send_to_group(wg_list1(WG_LIT("watch")), wg_buf_bytes(b), 0, (wg_bytes){0, 0}); }

static int on_close(wg_bytes id) {
	wg_buf b = {0};
	wg_bytes st;
	wg_puts(&b, WG_LIT("closed "));
	wg_puts(&b, id);
	wg_putc(&b, ' ');
	int rc = wg_closing_state(&st);
	if (rc < 0) {
		wg_puts(&b, WG_LIT("err "));
		wg_put_int(&b, -rc);
	} else {
		closing(&b, st);
	}
	watch(&b);
	return 0;
}
WASMGATE_ON_CLOSE(on_close)

/* on_task: the payload is "ok DATA" (result DATA), "fail DATA" (result
 * DATA, the task fails) or "hang" (runs until task_timeout stops it). */
static int on_task(long long task_id, wg_bytes p) {
	(void)task_id;
	unsigned int i = 0;
	while (i < p.n && p.p[i] != ' ') i++;
	wg_bytes mode = {p.p, i}, data = i < p.n ? (wg_bytes){p.p + i + 1, p.n - i - 1} : (wg_bytes){0, 0};
	if (wg_eq(mode, WG_LIT("hang")))
		for (;;) wg_now();
	if (wg_eq(mode, WG_LIT("ok"))) return wg_task_result(data) < 0;
	if (wg_eq(mode, WG_LIT("fail"))) {
		wg_task_result(data);
		return 1;
	}
	wg_buf b = {0};
	wg_puts(&b, WG_LIT("unknown mode "));
	wg_puts(&b, mode);
	wg_task_result(wg_buf_bytes(&b));
	return 1;
}
WASMGATE_ON_TASK(on_task)

static int on_finish(long long task_id, wg_bytes result, int status) {
	wg_buf b = {0};
	wg_puts(&b, WG_LIT("finish "));
	wg_put_int(&b, task_id);
	wg_putc(&b, ' ');
	wg_put_int(&b, status);
	wg_putc(&b, ' ');
	enc(&b, result);
	watch(&b);
	return 0;
}
WASMGATE_ON_FINISH(on_finish)

static int on_timer(long long timer_id, wg_bytes payload) {
	wg_buf b = {0};
	wg_puts(&b, WG_LIT("timer "));
	wg_put_int(&b, timer_id);
	wg_putc(&b, ' ');
	enc(&b, payload);
	watch(&b);
	return 0;
}
WASMGATE_ON_TIMER(on_timer)
