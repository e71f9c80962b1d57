/* c-echo: the echo handler of wasmgate in C with the SDK header
 * (guest-examples/c/wasmgate.h). It sends every message back to its sender
 * in the same frame type. Build (see guest-examples/c/README.md):
 *
 *   clang --target=wasm32 -Oz -nostdlib -ffreestanding -Wl,--no-entry \
 *         -I ../c -o c-echo.wasm echo.c
 */
#include "wasmgate.h"

static int echo(wg_bytes id, wg_bytes msg, int flags) {
	/* A failed send (typically: the client has just gone) is not worth a
	 * warning, as in the Go echo. */
	wg_send(id, msg, flags & WG_BINARY);
	return 0;
}
WASMGATE_ON_MESSAGE(echo)
