#!/usr/bin/env bash
# Runs Blockchain Commons' own `hubert` CLI (crates.io, version pinned below) against
# `deaddrop serve`, and deaddrop's client against `hubert server`, on 127.0.0.1.
#
#   scripts/hubert-interop.sh            # builds what is missing, prints one line a check
#
# Not part of CI: building hubert takes minutes. Set HUBERT=/path/to/hubert to use a binary
# you have; otherwise it is installed with `cargo install --locked` under target/hubert.
# Exit status: 0 when every check passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

HUBERT_VERSION=0.5.0
TARGET=${CARGO_TARGET_DIR:-target}
HUBERT=${HUBERT:-$TARGET/hubert/bin/hubert}
DEADDROP=$TARGET/release/deaddrop
failures=0
pids=()

cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done; }
trap cleanup EXIT

pass() { echo "ok    $1"; }
fail() { echo "FAIL  $1"; failures=$((failures + 1)); }
# check NAME EXPECTED_STATUS COMMAND...: runs COMMAND, compares its exit status.
check() {
    local name=$1 want=$2; shift 2
    local out status
    out=$("$@" 2>&1); status=$?
    if [ "$status" = "$want" ]; then
        pass "$name"
    else
        fail "$name (exit $status): $out"
    fi
}
# same NAME A B: the two strings are equal.
same() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: '$2' != '$3'"; fi; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

if [ ! -x "$HUBERT" ]; then
    echo "== installing hubert $HUBERT_VERSION into $TARGET/hubert (takes a few minutes)"
    cargo install hubert --version "$HUBERT_VERSION" --locked --root "$TARGET/hubert" \
        --target-dir "$TARGET/hubert-build" >/dev/null || { echo "cannot build hubert"; exit 1; }
fi
echo "== building deaddrop (release)"
cargo build --release -p deaddrop-cli --quiet || exit 1
echo "== $("$HUBERT" --version 2>/dev/null || echo hubert) against $("$DEADDROP" --version)"

dd() { env -u DEADDROP_STORAGE -u DEADDROP_URL -u DEADDROP_DB "$DEADDROP" "$@"; }

echo "== hubert's client against deaddrop serve"
port=$(free_port)
dd serve --memory --bind "127.0.0.1:$port" >/dev/null 2>&1 &
pids+=($!)
wait_for_port "$port" || { echo "deaddrop serve did not start"; exit 1; }
hub() { "$HUBERT" "$1" --storage server --host 127.0.0.1 --port "$port" "${@:2}"; }

check "hubert check sees deaddrop serve" 0 hub check
arid=$("$HUBERT" generate arid)
envelope=$("$HUBERT" generate envelope 200)
check "hubert put" 0 hub put "$arid" "$envelope"
same "hubert get returns what hubert put" "$(hub get --timeout 5 "$arid" 2>&1)" "$envelope"
check "a second hubert put at the ARID fails" 1 hub put "$arid" "$("$HUBERT" generate envelope 10)"
same "deaddrop (v1) reads what hubert put" \
    "$(dd --storage server --url "http://127.0.0.1:$port" --v1 get --timeout 5 "$arid" 2>&1)" "$envelope"
check "hubert put with a TTL" 0 hub put --ttl 60 "$("$HUBERT" generate arid)" "$envelope"
arid2=$("$HUBERT" generate arid)
envelope2=$("$HUBERT" generate envelope 5000)
check "deaddrop (v1) put" 0 dd --storage server --url "http://127.0.0.1:$port" --v1 put "$arid2" "$envelope2"
same "hubert gets what deaddrop put" "$(hub get --timeout 5 "$arid2" 2>&1)" "$envelope2"
check "hubert get of an unknown ARID fails after its timeout" 1 hub get --timeout 1 "$("$HUBERT" generate arid)"
arid3=$("$HUBERT" generate arid)
( sleep 1; dd --storage server --url "http://127.0.0.1:$port" --v1 put "$arid3" "$envelope" >/dev/null 2>&1 ) &
same "hubert's polling get sees a later deaddrop put" "$(hub get --timeout 10 "$arid3" 2>&1)" "$envelope"

echo "== deaddrop's client against hubert server"
port2=$(free_port)
"$HUBERT" server --port "$port2" >/dev/null 2>&1 &
pids+=($!)
wait_for_port "$port2" || { echo "hubert server did not start"; exit 1; }
on_hubert() { dd --storage server --url "http://127.0.0.1:$port2" --v1 "$@"; }
check "deaddrop check sees hubert server" 0 on_hubert check
arid4=$("$HUBERT" generate arid)
check "deaddrop put to hubert server" 0 on_hubert put --ttl 120 "$arid4" "$envelope"
same "deaddrop get from hubert server" "$(on_hubert get --timeout 5 "$arid4" 2>&1)" "$envelope"
check "deaddrop exists on hubert server" 0 on_hubert exists "$arid4"
check "a second deaddrop put to hubert server fails" 1 on_hubert put "$arid4" "$envelope2"
same "hubert reads what deaddrop put on hubert server" \
    "$("$HUBERT" get --storage server --port "$port2" --timeout 5 "$arid4" 2>&1)" "$envelope"
check "deaddrop get of an unknown ARID on hubert server ends with exit 1" 1 \
    on_hubert get --timeout 1 "$("$HUBERT" generate arid)"

if [ $failures = 0 ]; then echo "== all checks passed"; exit 0; fi
echo "== $failures check(s) failed"; exit 1
