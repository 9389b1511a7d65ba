#!/usr/bin/env bash
# Install the Debian packages of the HTTP/2 test peers (nghttpx, Apache httpd with mod_http2) and
# the Node peers' npm dependencies. Without them the matching tests skip and say why.
# Debian services do not start on install here; the tests start each server in the foreground.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v nghttpx >/dev/null || ! command -v apache2 >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-proxy apache2 >/dev/null
    else
        echo "install_http2_peers: not root or no apt-get: nghttpx/Apache tests will skip" >&2
    fi
fi
if command -v npm >/dev/null && [ ! -d node/node_modules/ws ]; then
    (cd node && npm install --no-audit --no-fund --silent)
fi
