#!/usr/bin/env bash
# Install the Debian packages of the browser and reverse-proxy test peers (Chromium, nginx, HAProxy,
# certutil for Chromium's NSS database) when a binary is missing; idempotent. When it cannot, it says
# so and the matching tests skip with the reason. Debian services do not start on install here; the
# tests run each server in the foreground and stop it by its PID.
set -uo pipefail
declare -A package=([chromium]=chromium [nginx]=nginx-light [haproxy]=haproxy [certutil]=libnss3-tools)
missing=()
for binary in chromium nginx haproxy certutil; do
    command -v "$binary" >/dev/null || [ -x "/usr/sbin/$binary" ] || missing+=("${package[$binary]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install_web_peers: not root or no apt-get; missing ${missing[*]}: the Chromium/nginx/HAProxy tests will skip" >&2
    exit 0
fi
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "install_web_peers: apt-get failed for ${missing[*]}: the Chromium/nginx/HAProxy tests will skip" >&2
fi
