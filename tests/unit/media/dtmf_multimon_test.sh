#!/bin/bash
# The DTMF digits A sends ("4106#") decoded from B's played audio by an
# independent decoder, multimon-ng, must be exactly those digits. The audio
# comes from unit_media's DTMF test case (two VoiceSessions in memory, Opus of
# a test signal around the digits), written out through MEDIA_DTMF_RAW.
set -euo pipefail
unit_media=$1
for tool in sox multimon-ng; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (Debian: apt-get install sox multimon-ng)"
    exit 77
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
MEDIA_DTMF_RAW="$work/heard.raw" "$unit_media" -tc='*DTMF 4106#*' >/dev/null
# multimon-ng reads 22050 Hz mono 16-bit raw.
sox -t raw -r 48000 -e signed -b 16 -c 1 "$work/heard.raw" -t raw -r 22050 -e signed -b 16 -c 1 "$work/heard22.raw"
digits=$(multimon-ng -q -t raw -a DTMF "$work/heard22.raw" 2>/dev/null | sed -n 's/^DTMF: //p' | tr -d '\n')
echo "multimon-ng decoded: '$digits'"
[[ "$digits" == "4106#" ]]
