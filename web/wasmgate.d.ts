// Types for wasmgate.js (ES module) and wasmgate.global.js (window.wasmgate).

/** First close code of the range a handler uses (close_client) to stop a page for good. */
export const FINAL_CLOSE_MIN: 4000;
/** Last close code of the final range. */
export const FINAL_CLOSE_MAX: 4099;

/** Reports whether a close code is final (4000–4099): the client does not reconnect. */
export function isFinalClose(code: number): boolean;

/** Opens a connection to a wasmgate module URL (ws:// or wss://) that reconnects by itself. */
export function connect(url: string | URL, opts?: Options): Gateway;

/** The option defaults (frozen). */
export const defaults: Readonly<Required<Omit<Options, "WebSocket" | "setTimeout" | "clearTimeout" | "now" | "random" | "onError">>>;

export interface Options {
  /** First back-off window in ms (> 0). Default 1000. */
  minDelay?: number;
  /** Largest back-off window in ms. Default 30000. */
  maxDelay?: number;
  /** Growth of the window per failed attempt (>= 1). Default 2. */
  factor?: number;
  /** Window in ms a reconnect after 1001/1012 is spread over. Default 5000. */
  restartWindow?: number;
  /** A connection open this long (ms) resets the back-off. Default 5000. */
  resetAfter?: number;
  /** A handshake not finished after this many ms is abandoned and retried; 0 = never. Default 10000. */
  connectTimeout?: number;
  /** Sends kept while disconnected; more are dropped with an overflow event. Default 100. */
  queueSize?: number;
  /** Sent in answer to {"type":"ping"}; null = do not answer. Default '{"type":"pong"}'. */
  pong?: string | null;
  /** Also deliver pings as message events. Default false. */
  pingEvents?: boolean;
  /** WebSocket subprotocols. */
  protocols?: string | string[];
  /** WebSocket constructor (tests, non-browser runtimes). Default globalThis.WebSocket. */
  WebSocket?: new (url: string | URL, protocols?: string | string[]) => WebSocketLike;
  /** Timer functions and clock (tests). Defaults: the global ones and Date.now. */
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: any) => void;
  now?: () => number;
  /** Random number in [0, 1) for the jitter (tests). Default Math.random. */
  random?: () => number;
  /** Receives exceptions thrown by listeners. Default reportError (as if uncaught). */
  onError?: (err: unknown) => void;
}

/** The part of the WebSocket interface the client uses. */
export interface WebSocketLike {
  readyState: number;
  binaryType: string;
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: { data: any }) => any) | null;
  onclose: ((ev: { code: number; reason: string; wasClean: boolean }) => any) | null;
}

export interface OpenEvent {
  url: string | URL;
}

export interface InitEvent {
  /** The new connection's client_id (also in gw.clientId). */
  clientId: string;
  /** The whole init message. */
  data: { type: "init"; client_id: string; [k: string]: unknown };
}

export interface MessageEvent {
  /** The parsed JSON value when json is true; otherwise the raw text, or the binary data. */
  data: any;
  /** The frame's text, or null for a binary frame. */
  text: string | null;
  /** The binary frame's data (an ArrayBuffer), or null for a text frame. */
  binary: ArrayBuffer | null;
  /** Whether the text parsed as JSON (with JSON.parse; never eval). */
  json: boolean;
}

export interface CloseEvent {
  code: number;
  reason: string;
  wasClean: boolean;
  /** True when the client stops for good (gw.close() or a 4000–4099 code). */
  final: boolean;
}

export interface ReconnectingEvent {
  /** 1 for the first retry after a close, 2 after that one failed, … */
  attempt: number;
  /** ms until the retry. */
  delay: number;
  /** The close code that caused it (1006 for a failed attempt). */
  code: number;
}

export interface OverflowEvent {
  /** The dropped message, as it would have been sent. */
  data: string | ArrayBufferLike | ArrayBufferView | Blob;
  queueSize: number;
}

export interface EventMap {
  open: OpenEvent;
  init: InitEvent;
  message: MessageEvent;
  close: CloseEvent;
  reconnecting: ReconnectingEvent;
  overflow: OverflowEvent;
}

export interface Gateway {
  readonly url: string | URL;
  /** The client_id of the current connection's init message; null while disconnected or before init. */
  readonly clientId: string | null;
  readonly state: "connecting" | "open" | "reconnecting" | "closed";
  /** Messages waiting for the next connection. */
  readonly queued: number;
  on<K extends keyof EventMap>(name: K, fn: (this: Gateway, ev: EventMap[K]) => void): this;
  off<K extends keyof EventMap>(name: K, fn?: (this: Gateway, ev: EventMap[K]) => void): this;
  /**
   * Sends a string or binary data as is, anything else as JSON. Queued while
   * disconnected. False when dropped: queue full (overflow event) or closed for good.
   */
  send(data: unknown): boolean;
  /** Closes and stops reconnecting for good. */
  close(code?: number, reason?: string): void;
}

declare const wasmgate: {
  connect: typeof connect;
  isFinalClose: typeof isFinalClose;
  defaults: typeof defaults;
  FINAL_CLOSE_MIN: typeof FINAL_CLOSE_MIN;
  FINAL_CLOSE_MAX: typeof FINAL_CLOSE_MAX;
};
export default wasmgate;

/** The classic script's global: <script src="wasmgate.global.js"> defines window.wasmgate. */
export as namespace wasmgate;
