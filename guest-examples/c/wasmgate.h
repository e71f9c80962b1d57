/* wasmgate.h: the C SDK of the wasmgate handler ABI, version 1 (abi/ABI.md).
 *
 * One header, no libc. Include it in exactly one .c file of your handler and
 * build with Debian's clang and lld:
 *
 *   clang --target=wasm32 -Oz -nostdlib -ffreestanding -Wl,--no-entry \
 *         -o handler.wasm handler.c
 *
 * Exports need no -fvisibility or --export-dynamic: every export below
 * carries export_name. Events are registered at file scope with one macro
 * each, and only registered events are exported (the host then never calls
 * the others, and `task`/`set_timer` know whether on_task/on_finish/on_timer
 * exist):
 *
 *   static int echo(wg_bytes id, wg_bytes msg, int flags) {
 *       wg_send(id, msg, flags & WG_BINARY);
 *       return 0;
 *   }
 *   WASMGATE_ON_MESSAGE(echo)
 *
 * Memory. The SDK owns the linear memory above __heap_base: the event buffer
 * (ABI.md §2) sits there, and after it a per-event scratch arena (wg_alloc)
 * that is reset before every event, so a handler allocates nothing per
 * message and never frees. Both grow with memory.grow as needed; when the
 * memory cannot grow (runtime.memory_limit_mb) wasmgate_buffer returns 0 and
 * the host refuses the event with a log line, and wg_alloc returns 0 and the
 * helpers WG_ENOMEM. A handler that manages memory above __heap_base itself
 * defines WASMGATE_BUFFER_SIZE (bytes) before including this header: the
 * event buffer is then a static array of that size (size it per ABI.md §2)
 * and the arena is off (wg_alloc returns 0 and helpers that return data
 * fail with WG_ENOMEM).
 *
 * Byte strings are wg_bytes (pointer, length); none is NUL-terminated. Event
 * inputs point into the event buffer and results into the arena: both are
 * valid until the event returns. Helpers return 0 (or a count, a size, an
 * id) on success and a negative WG_E* code on failure.
 */
#ifndef WASMGATE_H
#define WASMGATE_H

#define WASMGATE_ABI_VERSION 1

/* WG_FN marks the SDK's functions: a handler uses some of them. */
#define WG_FN static inline __attribute__((unused))

/* ---- Types ------------------------------------------------------------ */

/* wg_bytes is a byte string in guest memory. */
typedef struct {
	const char *p;
	unsigned int n;
} wg_bytes;

/* WG_LIT makes a wg_bytes of a string literal. */
#define WG_LIT(s) ((wg_bytes){(s), sizeof(s) - 1})

/* ---- Error codes (ABI.md §2): host functions return -code -------------- */

#define WG_EBADPTR 1       /* a (ptr, len) pair is outside guest memory */
#define WG_EINVAL 2        /* malformed argument */
#define WG_ENOTFOUND 3     /* client not connected; kv_get: key absent */
#define WG_ETOOLARGE 4     /* over a size maximum */
#define WG_EQUEUEFULL 5    /* send queue or task queue full */
#define WG_EUNAVAILABLE 6  /* registry backend did not answer */
#define WG_EINTERNAL 7     /* host failure */
#define WG_ELIMIT 8        /* a per-module or per-client bound is reached */
#define WG_EUNSUPPORTED 9  /* not possible here */
#define WG_ENOMEM 100      /* SDK only: the scratch arena cannot grow */

/* Send flags (ABI.md §4), kv_cas flags (§5.6), task statuses (§5.7). */
#define WG_BINARY 1
#define WG_ONLY_LIST 2
#define WG_KV_ABSENT 1
#define WG_TASK_OK 0
#define WG_TASK_FAILED 1
#define WG_TASK_CRASHED 2

/* Log levels of wg_log. */
#define WG_DEBUG 0
#define WG_INFO 1
#define WG_WARN 2
#define WG_ERROR 3

/* ---- Host functions (module "wasmgate", ABI.md §5) ----------------------
 * Pointers and sizes are i32 (C: pointers, unsigned int); ttl, delta, delay
 * and task/timer ids are i64 (C: long long). Parameter names are the ABI's:
 * abi/sdk_test.go checks every declaration against abi.HostFuncs(). */

#define WG_IMPORT(name) __attribute__((import_module("wasmgate"), import_name(#name)))

WG_IMPORT(send_to_client) int wasmgate_send_to_client(const void *id_ptr, unsigned int id_len, const void *msg_ptr, unsigned int msg_len, int flags);
WG_IMPORT(send_to_all) int wasmgate_send_to_all(const void *msg_ptr, unsigned int msg_len, int flags, const void *only_ptr, unsigned int only_len, const void *exclude_ptr, unsigned int exclude_len);
WG_IMPORT(close_client) int wasmgate_close_client(const void *id_ptr, unsigned int id_len, const void *msg_ptr, unsigned int msg_len, int flags);
WG_IMPORT(is_online) int wasmgate_is_online(const void *id_ptr, unsigned int id_len);
WG_IMPORT(bind_uid) int wasmgate_bind_uid(const void *id_ptr, unsigned int id_len, const void *uid_ptr, unsigned int uid_len);
WG_IMPORT(unbind_uid) int wasmgate_unbind_uid(const void *id_ptr, unsigned int id_len, const void *uid_ptr, unsigned int uid_len);
WG_IMPORT(is_uid_online) int wasmgate_is_uid_online(const void *uid_ptr, unsigned int uid_len);
WG_IMPORT(get_client_id_by_uid) int wasmgate_get_client_id_by_uid(const void *uid_ptr, unsigned int uid_len, void *out_ptr, unsigned int out_cap);
WG_IMPORT(get_uid_by_client_id) int wasmgate_get_uid_by_client_id(const void *id_ptr, unsigned int id_len, void *out_ptr, unsigned int out_cap);
WG_IMPORT(send_to_uid) int wasmgate_send_to_uid(const void *uids_ptr, unsigned int uids_len, const void *msg_ptr, unsigned int msg_len, int flags);
WG_IMPORT(join_group) int wasmgate_join_group(const void *id_ptr, unsigned int id_len, const void *group_ptr, unsigned int group_len);
WG_IMPORT(leave_group) int wasmgate_leave_group(const void *id_ptr, unsigned int id_len, const void *group_ptr, unsigned int group_len);
WG_IMPORT(ungroup) int wasmgate_ungroup(const void *group_ptr, unsigned int group_len);
WG_IMPORT(send_to_group) int wasmgate_send_to_group(const void *groups_ptr, unsigned int groups_len, const void *msg_ptr, unsigned int msg_len, int flags, const void *exclude_ptr, unsigned int exclude_len);
WG_IMPORT(get_client_id_count_by_group) int wasmgate_get_client_id_count_by_group(const void *group_ptr, unsigned int group_len);
WG_IMPORT(get_client_id_list_by_group) int wasmgate_get_client_id_list_by_group(const void *group_ptr, unsigned int group_len, void *out_ptr, unsigned int out_cap);
WG_IMPORT(get_uid_list_by_group) int wasmgate_get_uid_list_by_group(const void *group_ptr, unsigned int group_len, void *out_ptr, unsigned int out_cap);
WG_IMPORT(get_uid_count_by_group) int wasmgate_get_uid_count_by_group(const void *group_ptr, unsigned int group_len);
WG_IMPORT(get_all_client_id_count) int wasmgate_get_all_client_id_count(void);
WG_IMPORT(get_all_client_id_list) int wasmgate_get_all_client_id_list(void *out_ptr, unsigned int out_cap);
WG_IMPORT(get_all_uid_list) int wasmgate_get_all_uid_list(void *out_ptr, unsigned int out_cap);
WG_IMPORT(get_all_uid_count) int wasmgate_get_all_uid_count(void);
WG_IMPORT(get_all_group_id_list) int wasmgate_get_all_group_id_list(void *out_ptr, unsigned int out_cap);
WG_IMPORT(set_session) int wasmgate_set_session(const void *id_ptr, unsigned int id_len, const void *json_ptr, unsigned int json_len);
WG_IMPORT(update_session) int wasmgate_update_session(const void *id_ptr, unsigned int id_len, const void *json_ptr, unsigned int json_len);
WG_IMPORT(get_session) int wasmgate_get_session(const void *id_ptr, unsigned int id_len, void *out_ptr, unsigned int out_cap);
WG_IMPORT(log) int wasmgate_log(int level, const void *msg_ptr, unsigned int msg_len);
WG_IMPORT(now) long long wasmgate_now(void);
WG_IMPORT(kv_get) int wasmgate_kv_get(const void *key_ptr, unsigned int key_len, void *out_ptr, unsigned int out_cap);
WG_IMPORT(kv_set) int wasmgate_kv_set(const void *key_ptr, unsigned int key_len, const void *val_ptr, unsigned int val_len, long long ttl_ms);
WG_IMPORT(kv_delete) int wasmgate_kv_delete(const void *key_ptr, unsigned int key_len);
WG_IMPORT(kv_incr) int wasmgate_kv_incr(const void *key_ptr, unsigned int key_len, long long delta, long long ttl_ms, long long *out_ptr);
WG_IMPORT(kv_cas) int wasmgate_kv_cas(const void *key_ptr, unsigned int key_len, const void *old_ptr, unsigned int old_len, const void *new_ptr, unsigned int new_len, long long ttl_ms, int flags);
WG_IMPORT(task) long long wasmgate_task(const void *payload_ptr, unsigned int payload_len);
WG_IMPORT(task_result) int wasmgate_task_result(const void *result_ptr, unsigned int result_len);
WG_IMPORT(set_timer) long long wasmgate_set_timer(long long delay_ms, const void *payload_ptr, unsigned int payload_len);
WG_IMPORT(clear_timer) int wasmgate_clear_timer(long long timer_id);
WG_IMPORT(closing_state) int wasmgate_closing_state(void *out_ptr, unsigned int out_cap);

/* ---- Freestanding memory functions --------------------------------------
 * clang turns copy loops (and struct copies) into calls to these even with
 * -nostdlib. no_builtin keeps it from turning these loops into calls to
 * themselves; weak lets a handler that links a libc use its own. */

#define WG_MEMFN __attribute__((weak, no_builtin))
WG_MEMFN void *memcpy(void *dst, const void *src, unsigned long n) {
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--) *d++ = *s++;
	return dst;
}
WG_MEMFN void *memmove(void *dst, const void *src, unsigned long n) {
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (d < s) {
		while (n--) *d++ = *s++;
	} else {
		while (n--) d[n] = s[n];
	}
	return dst;
}
WG_MEMFN void *memset(void *dst, int c, unsigned long n) {
	unsigned char *d = dst;
	while (n--) *d++ = (unsigned char)c;
	return dst;
}
WG_MEMFN int memcmp(const void *a, const void *b, unsigned long n) {
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y) return *x - *y;
	return 0;
}

/* ---- The event buffer and the arena (ABI.md §2) ------------------------- */

extern unsigned char __heap_base;

/* wasmgate__buf is the address wasmgate_buffer last returned: events get
 * only lengths, so the guest must remember it. */
static unsigned char *wasmgate__buf;
static unsigned long long wasmgate__arena, wasmgate__top; /* arena start, next free byte */

/* wasmgate__room makes memory reach end (an address), growing it by whole
 * pages. It returns 0 when the memory cannot grow. */
WG_FN int wasmgate__room(unsigned long long end) {
	unsigned long long have = (unsigned long long)__builtin_wasm_memory_size(0) << 16;
	if (end <= have) return 1;
	if (end > 0xffffffffull) return 0;
	unsigned long long pages = (end - have + 0xffff) >> 16;
	return __builtin_wasm_memory_grow(0, (unsigned long)pages) != (unsigned long)-1;
}

WG_FN unsigned long long wasmgate__heap(void) {
	return ((unsigned long long)(unsigned long)&__heap_base + 15) & ~15ull;
}

#ifdef WASMGATE_BUFFER_SIZE
static unsigned char wasmgate__static_buf[WASMGATE_BUFFER_SIZE];
__attribute__((export_name("wasmgate_buffer"))) void *wasmgate__buffer(unsigned int min_size) {
	if (min_size > WASMGATE_BUFFER_SIZE) return 0; /* cannot allocate: the host refuses the event */
	wasmgate__buf = wasmgate__static_buf;
	return wasmgate__buf;
}
#else
__attribute__((export_name("wasmgate_buffer"))) void *wasmgate__buffer(unsigned int min_size) {
	unsigned long long base = wasmgate__heap();
	/* The buffer starts at __heap_base; the arena follows it. */
	if (!wasmgate__room(base + min_size)) return 0; /* cannot allocate: the host refuses the event */
	wasmgate__buf = (unsigned char *)(unsigned long)base;
	wasmgate__arena = (base + min_size + 15) & ~15ull;
	return wasmgate__buf;
}
#endif

__attribute__((export_name("wasmgate_abi_version"))) int wasmgate__abi_version(void) { return WASMGATE_ABI_VERSION; }

/* wasmgate__reset empties the arena before an event. */
WG_FN void wasmgate__reset(void) {
	if (wasmgate__arena == 0) wasmgate__arena = wasmgate__heap();
	wasmgate__top = wasmgate__arena;
}

/* wg_alloc returns n bytes (16-byte aligned) valid until the event returns,
 * or 0 if memory cannot grow. */
WG_FN void *wg_alloc(unsigned int n) {
#ifdef WASMGATE_BUFFER_SIZE
	(void)n;
	return 0;
#else
	if (wasmgate__top == 0) wasmgate__reset();
	unsigned long long p = wasmgate__top, end = p + n;
	if (!wasmgate__room(end)) return 0;
	wasmgate__top = (end + 15) & ~15ull;
	return (void *)(unsigned long)p;
#endif
}

WG_FN wg_bytes wasmgate__in(unsigned int off, unsigned int n) {
	return (wg_bytes){(const char *)wasmgate__buf + off, n};
}

/* ---- Events: one macro each, at file scope (ABI.md §3) ------------------ */

/* WASMGATE_ON_MESSAGE(fn): int fn(wg_bytes id, wg_bytes msg, int flags). Required. */
#define WASMGATE_ON_MESSAGE(fn) \
	__attribute__((export_name("on_message"))) int wasmgate__on_message(unsigned int id_len, unsigned int msg_len, int flags) { \
		wasmgate__reset(); \
		return fn(wasmgate__in(0, id_len), wasmgate__in(id_len, msg_len), flags); \
	}
/* WASMGATE_ON_START(fn): int fn(wg_bytes config); non-zero fails the instance. */
#define WASMGATE_ON_START(fn) \
	__attribute__((export_name("on_start"))) int wasmgate__on_start(unsigned int n) { \
		wasmgate__reset(); \
		return fn(wasmgate__in(0, n)); \
	}
/* WASMGATE_ON_HANDSHAKE(fn): int fn(wg_bytes fields), a list (wg_list_next,
 * wg_handshake_field); 0 accepts, 400..599 refuses with that status. */
#define WASMGATE_ON_HANDSHAKE(fn) \
	__attribute__((export_name("on_handshake"))) int wasmgate__on_handshake(unsigned int n) { \
		wasmgate__reset(); \
		return fn(wasmgate__in(0, n)); \
	}
/* WASMGATE_ON_CONNECT(fn), WASMGATE_ON_CLOSE(fn): int fn(wg_bytes id). */
#define WASMGATE_ON_CONNECT(fn) \
	__attribute__((export_name("on_connect"))) int wasmgate__on_connect(unsigned int n) { \
		wasmgate__reset(); \
		return fn(wasmgate__in(0, n)); \
	}
#define WASMGATE_ON_CLOSE(fn) \
	__attribute__((export_name("on_close"))) int wasmgate__on_close(unsigned int n) { \
		wasmgate__reset(); \
		return fn(wasmgate__in(0, n)); \
	}
/* WASMGATE_ON_TASK(fn): int fn(long long task_id, wg_bytes payload);
 * WASMGATE_ON_FINISH(fn): int fn(long long task_id, wg_bytes result, int status).
 * Register both to use wg_task. */
#define WASMGATE_ON_TASK(fn) \
	__attribute__((export_name("on_task"))) int wasmgate__on_task(long long task_id, unsigned int n) { \
		wasmgate__reset(); \
		return fn(task_id, wasmgate__in(0, n)); \
	}
#define WASMGATE_ON_FINISH(fn) \
	__attribute__((export_name("on_finish"))) int wasmgate__on_finish(long long task_id, unsigned int n, int status) { \
		wasmgate__reset(); \
		return fn(task_id, wasmgate__in(0, n), status); \
	}
/* WASMGATE_ON_TIMER(fn): int fn(long long timer_id, wg_bytes payload). */
#define WASMGATE_ON_TIMER(fn) \
	__attribute__((export_name("on_timer"))) int wasmgate__on_timer(long long timer_id, unsigned int n) { \
		wasmgate__reset(); \
		return fn(timer_id, wasmgate__in(0, n)); \
	}

/* ---- Byte strings ------------------------------------------------------- */

WG_FN unsigned int wg_strlen(const char *s) {
	unsigned int n = 0;
	while (s[n]) n++;
	return n;
}

/* wg_cstr makes a wg_bytes of a NUL-terminated string (without the NUL). */
WG_FN wg_bytes wg_cstr(const char *s) { return (wg_bytes){s, wg_strlen(s)}; }

WG_FN int wg_eq(wg_bytes a, wg_bytes b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

/* wg_buf is a growable byte buffer in the arena, for messages and lists. */
typedef struct {
	char *p;
	unsigned int n, cap;
	int err; /* sticky: the first failure (-WG_ENOMEM) */
} wg_buf;

/* wg_put appends n bytes. A failure is remembered in b->err. */
WG_FN void wg_put(wg_buf *b, const void *p, unsigned int n) {
	if (b->err) return;
	if (b->n + n > b->cap) {
		unsigned int cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->n + n) cap *= 2;
		char *q = wg_alloc(cap);
		if (!q) {
			b->err = -WG_ENOMEM;
			return;
		}
		memcpy(q, b->p, b->n);
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}
WG_FN void wg_puts(wg_buf *b, wg_bytes s) { wg_put(b, s.p, s.n); }
WG_FN void wg_putc(wg_buf *b, char c) { wg_put(b, &c, 1); }
WG_FN wg_bytes wg_buf_bytes(const wg_buf *b) { return (wg_bytes){b->p, b->n}; }

/* wg_put_int appends v in decimal. */
WG_FN void wg_put_int(wg_buf *b, long long v) {
	char tmp[24];
	int i = sizeof tmp;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	do tmp[--i] = (char)('0' + u % 10); while (u /= 10);
	if (v < 0) tmp[--i] = '-';
	wg_put(b, tmp + i, sizeof tmp - i);
}

/* ---- Lists (ABI.md §2): u32 little-endian length, then the bytes --------- */

/* wg_list_add appends one entry to a list being built. */
WG_FN void wg_list_add(wg_buf *b, wg_bytes s) {
	unsigned char len[4] = {(unsigned char)s.n, (unsigned char)(s.n >> 8), (unsigned char)(s.n >> 16), (unsigned char)(s.n >> 24)};
	wg_put(b, len, 4);
	wg_puts(b, s);
}

/* wg_list_next reads the next entry of list (advancing it): 1 if it read
 * one, 0 at the end, -WG_EINVAL if the encoding is broken. */
WG_FN int wg_list_next(wg_bytes *list, wg_bytes *entry) {
	if (list->n == 0) return 0;
	if (list->n < 4) return -WG_EINVAL;
	const unsigned char *q = (const unsigned char *)list->p;
	unsigned int n = q[0] | q[1] << 8 | q[2] << 16 | (unsigned int)q[3] << 24;
	if (n > list->n - 4) return -WG_EINVAL;
	*entry = (wg_bytes){list->p + 4, n};
	list->p += 4 + n;
	list->n -= 4 + n;
	return 1;
}

/* wg_list_count returns the number of entries, or -WG_EINVAL. */
WG_FN int wg_list_count(wg_bytes list) {
	wg_bytes e;
	int n = 0, r;
	while ((r = wg_list_next(&list, &e)) > 0) n++;
	return r < 0 ? r : n;
}

/* wg_list_contains reports whether the list has the entry s. */
WG_FN int wg_list_contains(wg_bytes list, wg_bytes s) {
	wg_bytes e;
	while (wg_list_next(&list, &e) > 0)
		if (wg_eq(e, s)) return 1;
	return 0;
}

/* wg_list1 makes a one-entry list in the arena (for send_to_uid, …). */
WG_FN wg_bytes wg_list1(wg_bytes s) {
	wg_buf b = {0};
	wg_list_add(&b, s);
	return b.err ? (wg_bytes){0, 0} : wg_buf_bytes(&b);
}

/* wg_handshake_field returns field i (0 client id, 1 method, 2 path, 3 query,
 * 4 remote address) of on_handshake's input, or the value of the header name
 * (lower case) when name.n > 0. It returns 1 if found. */
WG_FN int wg_handshake_field(wg_bytes fields, int i, wg_bytes name, wg_bytes *out) {
	wg_bytes k, v;
	for (int j = 0; j < 5; j++) {
		if (wg_list_next(&fields, &k) <= 0) return 0;
		if (name.n == 0 && j == i) {
			*out = k;
			return 1;
		}
	}
	while (wg_list_next(&fields, &k) > 0 && wg_list_next(&fields, &v) > 0)
		if (wg_eq(k, name)) {
			*out = v;
			return 1;
		}
	return 0;
}

/* ---- Helpers over the host functions ------------------------------------ */

/* WG__FETCH runs CALL(ptr, cap) into the arena, growing until the result
 * fits (ABI.md §2: the call returns the full size and writes only if it fits). */
#define WG__FETCH(out, CALL) \
	do { \
		unsigned int cap_ = 256; \
		for (;;) { \
			void *p_ = wg_alloc(cap_); \
			if (!p_) return -WG_ENOMEM; \
			int n_ = CALL(p_, cap_); \
			if (n_ < 0) return n_; \
			if ((unsigned int)n_ <= cap_) { \
				*(out) = (wg_bytes){p_, (unsigned int)n_}; \
				return n_; \
			} \
			cap_ = (unsigned int)n_; \
		} \
	} while (0)

WG_FN int wg_send(wg_bytes id, wg_bytes msg, int flags) { return wasmgate_send_to_client(id.p, id.n, msg.p, msg.n, flags); }
WG_FN int wg_send_to_all(wg_bytes msg, int flags, wg_bytes only, wg_bytes exclude) { return wasmgate_send_to_all(msg.p, msg.n, flags, only.p, only.n, exclude.p, exclude.n); }
WG_FN int wg_send_to_uid(wg_bytes uids, wg_bytes msg, int flags) { return wasmgate_send_to_uid(uids.p, uids.n, msg.p, msg.n, flags); }
WG_FN int wg_send_to_group(wg_bytes groups, wg_bytes msg, int flags, wg_bytes exclude) { return wasmgate_send_to_group(groups.p, groups.n, msg.p, msg.n, flags, exclude.p, exclude.n); }
/* WASMGATE_CLOSE_CODE(c): the close_client flag that closes with code c
 * (1000 or 4000-4999; wasmgate.js does not reconnect after 4000-4099). */
#define WASMGATE_CLOSE_CODE(c) ((int)((unsigned int)(c) << 16))
WG_FN int wg_close_client(wg_bytes id, wg_bytes msg, int flags) { return wasmgate_close_client(id.p, id.n, msg.p, msg.n, flags); }
WG_FN int wg_is_online(wg_bytes id) { return wasmgate_is_online(id.p, id.n); }
WG_FN int wg_bind_uid(wg_bytes id, wg_bytes uid) { return wasmgate_bind_uid(id.p, id.n, uid.p, uid.n); }
WG_FN int wg_unbind_uid(wg_bytes id, wg_bytes uid) { return wasmgate_unbind_uid(id.p, id.n, uid.p, uid.n); }
WG_FN int wg_is_uid_online(wg_bytes uid) { return wasmgate_is_uid_online(uid.p, uid.n); }
WG_FN int wg_join_group(wg_bytes id, wg_bytes group) { return wasmgate_join_group(id.p, id.n, group.p, group.n); }
WG_FN int wg_leave_group(wg_bytes id, wg_bytes group) { return wasmgate_leave_group(id.p, id.n, group.p, group.n); }
WG_FN int wg_ungroup(wg_bytes group) { return wasmgate_ungroup(group.p, group.n); }
WG_FN int wg_client_count_by_group(wg_bytes group) { return wasmgate_get_client_id_count_by_group(group.p, group.n); }
WG_FN int wg_uid_count_by_group(wg_bytes group) { return wasmgate_get_uid_count_by_group(group.p, group.n); }
WG_FN int wg_set_session(wg_bytes id, wg_bytes json) { return wasmgate_set_session(id.p, id.n, json.p, json.n); }
WG_FN int wg_update_session(wg_bytes id, wg_bytes json) { return wasmgate_update_session(id.p, id.n, json.p, json.n); }
WG_FN int wg_log(int level, wg_bytes msg) { return wasmgate_log(level, msg.p, msg.n); }
WG_FN long long wg_now(void) { return wasmgate_now(); }
WG_FN int wg_kv_set(wg_bytes key, wg_bytes val, long long ttl_ms) { return wasmgate_kv_set(key.p, key.n, val.p, val.n, ttl_ms); }
WG_FN int wg_kv_delete(wg_bytes key) { return wasmgate_kv_delete(key.p, key.n); }
/* wg_kv_incr adds delta and stores the new value in *out (which may be 0:
 * the SDK then passes its own 8-byte slot; the host always needs one). */
WG_FN int wg_kv_incr(wg_bytes key, long long delta, long long ttl_ms, long long *out) {
	long long tmp;
	return wasmgate_kv_incr(key.p, key.n, delta, ttl_ms, out ? out : &tmp);
}
WG_FN int wg_kv_cas(wg_bytes key, wg_bytes old, wg_bytes val, long long ttl_ms, int flags) { return wasmgate_kv_cas(key.p, key.n, old.p, old.n, val.p, val.n, ttl_ms, flags); }
WG_FN long long wg_task(wg_bytes payload) { return wasmgate_task(payload.p, payload.n); }
WG_FN int wg_task_result(wg_bytes result) { return wasmgate_task_result(result.p, result.n); }
WG_FN long long wg_set_timer(long long delay_ms, wg_bytes payload) { return wasmgate_set_timer(delay_ms, payload.p, payload.n); }
WG_FN int wg_clear_timer(long long timer_id) { return wasmgate_clear_timer(timer_id); }

/* Functions with results: *out points into the arena; they return its size. */
static wg_bytes wg__a;
WG_FN int wg__uid_of(void *p, unsigned int c) { return wasmgate_get_uid_by_client_id(wg__a.p, wg__a.n, p, c); }
WG_FN int wg__ids_of_uid(void *p, unsigned int c) { return wasmgate_get_client_id_by_uid(wg__a.p, wg__a.n, p, c); }
WG_FN int wg__ids_of_group(void *p, unsigned int c) { return wasmgate_get_client_id_list_by_group(wg__a.p, wg__a.n, p, c); }
WG_FN int wg__uids_of_group(void *p, unsigned int c) { return wasmgate_get_uid_list_by_group(wg__a.p, wg__a.n, p, c); }
WG_FN int wg__session_of(void *p, unsigned int c) { return wasmgate_get_session(wg__a.p, wg__a.n, p, c); }
WG_FN int wg__kv_of(void *p, unsigned int c) { return wasmgate_kv_get(wg__a.p, wg__a.n, p, c); }

/* wg_uid: the client's uid (size 0: none). */
WG_FN int wg_uid(wg_bytes id, wg_bytes *out) { wg__a = id; WG__FETCH(out, wg__uid_of); }
/* wg_client_ids_by_uid, wg_client_ids_by_group, wg_uids_by_group: lists. */
WG_FN int wg_client_ids_by_uid(wg_bytes uid, wg_bytes *out) { wg__a = uid; WG__FETCH(out, wg__ids_of_uid); }
WG_FN int wg_client_ids_by_group(wg_bytes group, wg_bytes *out) { wg__a = group; WG__FETCH(out, wg__ids_of_group); }
WG_FN int wg_uids_by_group(wg_bytes group, wg_bytes *out) { wg__a = group; WG__FETCH(out, wg__uids_of_group); }
/* wg_session: the client's session, a JSON object ({} if none). */
WG_FN int wg_session(wg_bytes id, wg_bytes *out) { wg__a = id; WG__FETCH(out, wg__session_of); }
/* wg_kv_get: the value; -WG_ENOTFOUND if absent. */
WG_FN int wg_kv_get(wg_bytes key, wg_bytes *out) { wg__a = key; WG__FETCH(out, wg__kv_of); }
/* Whole-gateway lists and counts. */
WG_FN int wg_all_client_ids(wg_bytes *out) { WG__FETCH(out, wasmgate_get_all_client_id_list); }
WG_FN int wg_all_uids(wg_bytes *out) { WG__FETCH(out, wasmgate_get_all_uid_list); }
WG_FN int wg_all_groups(wg_bytes *out) { WG__FETCH(out, wasmgate_get_all_group_id_list); }
/* wg_closing_state: during on_close, what the closing client had, as a list
 * (read it with wg_list_next): its uid (empty: none), its session (a JSON
 * object), then its groups, sorted. -WG_EUNSUPPORTED outside on_close. */
WG_FN int wg_closing_state(wg_bytes *out) { WG__FETCH(out, wasmgate_closing_state); }
WG_FN int wg_all_client_count(void) { return wasmgate_get_all_client_id_count(); }
WG_FN int wg_all_uid_count(void) { return wasmgate_get_all_uid_count(); }

/* wg_strerror names a WG_E* code (positive or negative), as the Go SDK does. */
WG_FN const char *wg_strerror(int e) {
	static const char *const names[] = {"ok", "bad pointer", "invalid argument", "not found", "too large", "queue full", "unavailable", "internal error", "limit reached", "unsupported here"};
	if (e < 0) e = -e;
	if (e == WG_ENOMEM) return "out of memory";
	return e < (int)(sizeof names / sizeof names[0]) ? names[e] : "unknown error";
}

#endif /* WASMGATE_H */
