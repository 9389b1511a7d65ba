'use strict';
// An RFC 8441 WebSocket server for websync's tests: Node's http2 module hands each extended
// CONNECT stream to the npm package `ws`, which does the framing (masking checks, deflate, close).
//
//   node h2_ws_server.js [--tls PEM] [--no-connect-protocol] [--allow-http1]
//
// Listens on 127.0.0.1 with a free port and prints "PORT <n>" once ready. PEM holds the key and
// the certificate chain. Paths: /echo echoes; /close/CODE closes at once with CODE and reason
// "bye"; /reject answers 403 with a body; on any path the text message "goaway" makes the server
// send GOAWAY (last stream: this one) and answer "goaway sent". The first offered subprotocol is
// chosen; permessage-deflate is accepted when offered. --allow-http1 (TLS only) also serves
// HTTP/1.1 upgrades on the same port, chosen by ALPN.
const fs = require('fs');
const http2 = require('http2');
const path = require('path');
const WebSocket = require('ws');

const lib = path.join(__dirname, 'node_modules', 'ws', 'lib');
const PerMessageDeflate = require(path.join(lib, 'permessage-deflate.js'));
const extension = require(path.join(lib, 'extension.js'));

const MAX_PAYLOAD = 64 * 1024 * 1024;
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);

function behave(ws, requestPath, session, streamId) {
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString() === 'goaway' && session) {
      session.goaway(0, streamId);
      ws.send('goaway sent');
      return;
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
  const close = requestPath.match(/^\/close\/(\d+)$/);
  if (close) ws.close(Number(close[1]), 'bye');
}

function onStream(stream, headers) {
  stream.on('error', () => {});
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({ ':status': 400 });
    stream.end('extended CONNECT only');
    return;
  }
  const requestPath = headers[':path'];
  if (requestPath === '/reject') {
    stream.respond({ ':status': 403 });
    stream.end('go away');
    return;
  }
  const response = { ':status': 200 };
  const ws = new WebSocket(null, undefined, { autoPong: true });
  const offered = (headers['sec-websocket-protocol'] || '').split(',').map((s) => s.trim()).filter(Boolean);
  if (offered.length) {
    response['sec-websocket-protocol'] = offered[0];
    ws._protocol = offered[0];
  }
  const offers = headers['sec-websocket-extensions'] ? extension.parse(headers['sec-websocket-extensions']) : {};
  if (offers[PerMessageDeflate.extensionName]) {
    const deflate = new PerMessageDeflate({ isServer: true, maxPayload: MAX_PAYLOAD });
    deflate.accept(offers[PerMessageDeflate.extensionName]);
    response['sec-websocket-extensions'] = extension.format({ [PerMessageDeflate.extensionName]: [deflate.params] });
    ws._extensions = { [PerMessageDeflate.extensionName]: deflate };
  }
  stream.respond(response);
  ws.setSocket(stream, Buffer.alloc(0), { maxPayload: MAX_PAYLOAD, allowSynchronousEvents: true });
  behave(ws, requestPath, stream.session, stream.id);
}

const settings = { enableConnectProtocol: !flag('--no-connect-protocol') };
const pem = option('--tls');
const server = pem
  ? http2.createSecureServer({ key: fs.readFileSync(pem), cert: fs.readFileSync(pem), settings, allowHTTP1: flag('--allow-http1') })
  : http2.createServer({ settings });
server.on('stream', onStream);
if (flag('--allow-http1')) {
  const wss = new WebSocket.Server({ noServer: true, maxPayload: MAX_PAYLOAD, perMessageDeflate: true });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => behave(ws, req.url, null, 0));
  });
}
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
