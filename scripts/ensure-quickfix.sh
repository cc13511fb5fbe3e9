#!/bin/sh
# Best-effort install of Debian's QuickFIX library and a C++ compiler, used by
# tests/test_quickfix_interop.py to build a real FIX initiator. Needs root and apt.
if [ -f /usr/include/quickfix/Initiator.h ] && command -v g++ >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-quickfix: not root or no apt-get; the QuickFIX interop test will report it" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1
apt-get install -y -qq libquickfix-dev g++ >/dev/null 2>&1 \
    || echo "ensure-quickfix: apt-get install libquickfix-dev failed" >&2
exit 0
