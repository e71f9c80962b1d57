// Package web holds the browser client (wasmgate.js, web/README.md) for the
// gateway to serve: the pages need no build step and no CDN, they load the
// client from the gateway they connect to. The JavaScript files are the
// source of truth; this package only embeds them.
package web

import _ "embed"

// Script is the client as a classic script (<script src="/wasmgate.js">),
// defining window.wasmgate. It is generated from Module by web/build.mjs.
//
//go:embed wasmgate.global.js
var Script []byte

// Module is the client as an ES module (import … from "/wasmgate.mjs").
//
//go:embed wasmgate.js
var Module []byte

// Types is the TypeScript declaration file of both.
//
//go:embed wasmgate.d.ts
var Types []byte
