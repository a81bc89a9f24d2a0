#!/usr/bin/env bash
# Measures notes on SQLite with wrk: the signed-in list page (20 notes) and note creation.
# Usage: bash crates/notes/bench/bench.sh [path/to/release/notes]   (needs wrk and curl)
set -euo pipefail
cd "$(dirname "$0")"
binary="${1:-../../../target/release/notes}"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
NOTES__SERVER__LISTEN=127.0.0.1:18083 NOTES__ADMIN__LISTEN=127.0.0.1:19083 \
  NOTES__STORAGE__URL="sqlite://$work/notes.db" NOTES__TELEMETRY__LOG_LEVEL=warn \
  NOTES__TELEMETRY__LOG_FORMAT=json "$binary" serve > "$work/log" &
server=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18083/livez >/dev/null && break; sleep 0.1; done
base=http://127.0.0.1:18083
jar="$work/cookies"
csrf() { curl -s -b "$jar" -c "$jar" "$base/signin/" | grep -o 'name="csrf_token" value="[0-9a-f]*"' | head -n1 | cut -d'"' -f4; }
email="bench-$RANDOM@example.com"
password="benchmark password"
curl -s -b "$jar" -c "$jar" -o /dev/null "$base/signup/"
curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "email=$email" --data-urlencode "password=$password" \
  --data-urlencode "confirm_password=$password" --data-urlencode "csrf_token=$(csrf)" "$base/signup/"
curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "email=$email" --data-urlencode "password=$password" \
  --data-urlencode "csrf_token=$(csrf)" "$base/signin/"
export NOTES_SESSION="$(awk '$6 == "notes_session" {print $7}' "$jar")"
export NOTES_CSRF="$(csrf)"
for i in $(seq 1 20); do
  curl -s -b "$jar" -o /dev/null --data-urlencode "name=note $i" --data-urlencode "text=text of note $i" \
    --data-urlencode "csrf_token=$NOTES_CSRF" --data-urlencode "pad=" "$base/notes/create/"
done
curl -s -b "$jar" "$base/" | grep -o 'All notes ([0-9]*)'
echo "== GET / (signed in, 20 notes)"
wrk -t1 -c16 -d15s --latency -H "Cookie: notes_session=$NOTES_SESSION" "$base/"
echo "== POST /notes/create/"
wrk -t1 -c16 -d15s --latency -s create_note.lua "$base/notes/create/"
curl -s -b "$jar" "$base/" | grep -o 'All notes ([0-9]*)'
