#!/bin/sh
# Best-effort install of what some tests drive as real outside programs, from
# Debian: QuickFIX and a C++ compiler (tests/test_quickfix_interop.py builds a
# real FIX initiator) and Mosquitto (the MQTT drop-copy tests use it as the
# broker; without it they use the embedded amqtt broker). Needs root and apt.
missing=""
if [ ! -f /usr/include/quickfix/Initiator.h ] || ! command -v g++ >/dev/null 2>&1; then
    missing="libquickfix-dev g++"
fi
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    missing="$missing mosquitto"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-deps: not root or no apt-get; missing: $missing" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
    || echo "ensure-test-deps: apt-get install $missing failed" >&2
exit 0
