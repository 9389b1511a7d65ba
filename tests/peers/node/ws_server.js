'use strict';
// An HTTP/1.1 echo server of npm `ws` for websync's tests, with permessage-deflate options:
//
//   node ws_server.js '{"serverMaxWindowBits": 10, "zlibDeflateOptions": {"level": 1}}'
//
// The JSON is ws's `perMessageDeflate` option (false: no compression). Listens on 127.0.0.1 with a
// free port and prints "PORT <n>" once ready. Every message is echoed; the text message
// "extensions?" is answered with the Sec-WebSocket-Extensions header the server sent.
const path = require('path');
const WebSocket = require(path.join(__dirname, 'node_modules', 'ws'));

const perMessageDeflate = JSON.parse(process.argv[2] || 'true');
const server = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate, maxPayload: 0 });
server.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString() === 'extensions?') {
      ws.send(ws.extensions);
      return;
    }
    ws.send(data, { binary: isBinary });
  });
});
server.on('listening', () => console.log(`PORT ${server.address().port}`));
