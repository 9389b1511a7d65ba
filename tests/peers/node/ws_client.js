'use strict';
// A client of npm `ws` for websync's tests: connects to URL, sends one binary message of SIZE
// bytes once open, then waits for the close and prints one JSON line:
//   {"opened": bool, "code": n, "reason": s, "error": s|null}   ({"timeout": true} after 20 s)
//
//   node ws_client.js URL SIZE
const path = require('path');
const WebSocket = require(path.join(__dirname, 'node_modules', 'ws'));

const [url, size] = process.argv.slice(2);
const result = { opened: false, code: null, reason: null, error: null };
const ws = new WebSocket(url, { maxPayload: 0 });
const timer = setTimeout(() => {
  console.log(JSON.stringify({ ...result, timeout: true }));
  process.exit(2);
}, 20000);
ws.on('open', () => {
  result.opened = true;
  ws.send(Buffer.alloc(Number(size)), { binary: true });
});
ws.on('error', (error) => {
  result.error = String(error && error.message);
});
ws.on('close', (code, reason) => {
  clearTimeout(timer);
  result.code = code;
  result.reason = reason.toString();
  console.log(JSON.stringify(result));
});
