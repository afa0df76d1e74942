#!/usr/bin/env bash
# Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/
# from the golden vectors (crates/wire/tests/data/*.hex, the escrow
# genesis shape) and copies the committed inputs of fuzz/seeds/<target>/
# (crashes found before, kept as regression inputs). Idempotent: a file's
# name is its content's hash, as libFuzzer names corpus files.
set -euo pipefail
cd "$(dirname "$0")"

vectors=../crates/wire/tests/data
corpus=corpus

# put TARGET: stdin becomes one seed of TARGET.
put() {
    local dir="$corpus/$1" tmp
    mkdir -p "$dir"
    tmp=$(mktemp)
    cat >"$tmp"
    mv "$tmp" "$dir/seed-$(sha1sum <"$tmp" | cut -c1-16)"
}
# frame NAME: the golden frame NAME.hex as bytes (length prefix included).
frame() { tr -d ' \n' <"$vectors/$1.hex" | xxd -r -p; }
# body NAME: the frame's body, tag included (what decode_body reads).
body() { frame "$1" | tail -c +5; }
# payload NAME: the body without its tag.
payload() { frame "$1" | tail -c +6; }

all_frames=()
for f in "$vectors"/*.hex; do
    name=$(basename "$f" .hex)
    all_frames+=("$name")
    frame "$name" | put decode
    body "$name" | put decode
done

# connection: after the handshake, every message a peer may send, one at a
# time and all together (handshake frames included: unexpected there).
for name in "${all_frames[@]}"; do frame "$name" | put connection; done
for name in "${all_frames[@]}"; do frame "$name"; done | put connection

# block: byte 0 = fix_up bits (all, none), then a Block or SyncBlocks body.
for name in block block_genesis sync_blocks; do
    for fix in '\x0f' '\x00' '\x09'; do
        { printf "$fix"; body "$name"; } | put block
    done
done

# tx: byte 0 = mode (even: as sent, odd: re-signed), then a signed tx.
for mode in '\x00' '\x01' '\x03'; do
    { printf "$mode"; payload tx; } | put tx
done

# api: byte 0 = the endpoint and headers (see fuzz_targets/api.rs), then
# the rest.
txhex=$(payload tx | xxd -p | tr -d '\n')
printf '\x00{"tx":"%s"}' "$txhex" | put api
printf '\x01{"addr":"127.0.0.1:9"}' | put api
printf '\x02{"blocks":1,"to":"bob"}' | put api
printf '\x03{"block":["127.0.0.1:9"]}' | put api
printf '\x04from=0&to=2' | put api
printf '\x04last=5' | put api
printf '\x05depth=3' | put api
printf '\x06%s' "$(body block_genesis | head -c 8 | xxd -p)" | put api
printf '\x07%s' "${txhex:0:8}" | put api
printf '\x08alice' | put api
printf '\x09%s' "${txhex:0:64}" | put api
printf '\x0a1' | put api
printf '\x0b' | put api
payload tx | { printf '\x0b'; cat; } | put api
printf '\x0c' | put api
printf '\x0dstatus' | put api
# bit 6: no token (401 on control endpoints); bit 7: not JSON (415); a
# body over the harness's 1024-byte limit (413).
printf '\x42{"blocks":1,"to":"bob"}' | put api
printf '\x80{"tx":"%s"}' "$txhex" | put api
printf '\xcc{}' | put api
{ printf '\x00{"tx":"'; head -c 1100 /dev/zero | tr '\0' 'a'; printf '"}'; } | put api

# store: byte 0 = the record (and bits 4, 5), byte 1 = fix_up bits; an
# empty rest is the base store's own record.
for kind in '\x00' '\x01' '\x02' '\x03' '\x04'; do
    printf "$kind"'\x0f' | put store
done

# genesis: the dev genesis's shape (docs: crates/escrow/src/genesis.rs).
cat <<'JSON' | put genesis
{
  "name": "fuzz-net",
  "timestamp_ms": 1767225600000,
  "params": { "initial_target_bits": 4, "retarget": null, "max_future_ms": 7200000,
              "median_time_span": 11, "max_block_bytes": 1048576, "max_block_txs": 10000 },
  "coinbase_reward": 50,
  "allocations": [ { "to": "0101010101010101010101010101010101010101010101010101010101010101", "amount": 1000000 } ]
}
JSON

cat <<'JSON' | put genesis
{"name":"retargeting","timestamp_ms":1767225600000,"params":{"initial_target_bits":2,"retarget":{"interval":2,"block_time_ms":1000,"max_step":4},"max_future_ms":7200000,"median_time_span":3,"max_block_bytes":4096,"max_block_txs":10},"coinbase_reward":50,"allocations":[]}
JSON

# Inputs kept from earlier runs (crashes now fixed), per target.
if [ -d seeds ]; then
    for dir in seeds/*/; do
        [ -d "$dir" ] || continue
        target=$(basename "$dir")
        mkdir -p "$corpus/$target"
        cp "$dir"* "$corpus/$target/" 2>/dev/null || true
    done
fi
