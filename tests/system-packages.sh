#!/bin/sh
# Debian tools some tests run for real: espeak-ng (training corpus speech) and opus-tools (the Opus
# side of the quality benchmark). Installs them when missing and apt-get can; otherwise says what to do.
missing=""
command -v espeak-ng >/dev/null 2>&1 || missing="$missing espeak-ng"
command -v opusenc >/dev/null 2>&1 || missing="$missing opus-tools"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null && exit 0
fi
echo "tests need:$missing (Debian: sudo apt-get install$missing); the tests that use them will fail" >&2
exit 0
