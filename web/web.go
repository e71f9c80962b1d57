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

// ChatDemo is the chat demo page, served at /demo/chat on the public
// listener: a name, a room, presence and messages through the chat module.
//
//go:embed demo/chat.html
var ChatDemo []byte

// TasksDemo is the task notification demo page, served at /demo/tasks: the
// seed flow with examples/demo-backend.
//
//go:embed demo/tasks.html
var TasksDemo []byte

// Dashboard is the admin dashboard, served at /ui on the admin listener
// only. It holds no data: it reads GET /status with the push secret.
//
//go:embed admin/ui.html
var Dashboard []byte
