#!/usr/bin/env bash
# Install the Debian packages of the proxy test peers (tinyproxy, squid, microsocks) when a binary is
# missing; idempotent. When it cannot, it says so and the proxy tests skip with the reason.
# Debian services do not start on install here; the tests run each proxy in the foreground.
set -uo pipefail
missing=()
for binary in tinyproxy squid microsocks; do
    command -v "$binary" >/dev/null || [ -x "/usr/sbin/$binary" ] || missing+=("$binary")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install_proxy_peers: not root or no apt-get; missing ${missing[*]}: the proxy tests will skip" >&2
    exit 0
fi
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "install_proxy_peers: apt-get failed for ${missing[*]}: the proxy tests will skip" >&2
fi
