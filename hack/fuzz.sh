#!/usr/bin/env bash
# Runs every Go fuzz target briefly (each for the given time, default 10s). Seed corpora
# live in testdata/fuzz/ beside each target and run in plain `go test` too.
#
# A failing input is written to testdata/fuzz/<Target>/ and fails the run. A run that
# fails without writing one is tried up to three times, and said so: Go's fuzzer reports
# "context deadline exceeded" when -fuzztime ends during a slow execution, which is the
# machine's load, not the code. One fuzz worker keeps that load down on a 2-core machine.
set -euo pipefail
fuzztime=${1:-10s}
cd "$(dirname "$0")/.."
found=0
# A target without a committed corpus has no folder yet: that counts as zero inputs.
inputs() { if [[ -d $1 ]]; then find "$1" -type f | wc -l; else echo 0; fi; }
while IFS=: read -r file _ line; do
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  corpus="$(dirname "$file")/testdata/fuzz/$name"
  echo "fuzz $pkg $name ($fuzztime)"
  before=$(inputs "$corpus")
  for attempt in 1 2 3; do
    out=$(mktemp)
    if go test -run='^$' -parallel=1 -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" >"$out" 2>&1; then
      cat "$out"
      rm -f "$out"
      break
    fi
    if [[ $(inputs "$corpus") != "$before" ]]; then
      cat "$out"
      rm -f "$out"
      echo "fuzz $name found a failing input: see $corpus" >&2
      exit 1
    fi
    if [[ $attempt == 3 ]]; then
      cat "$out"
      rm -f "$out"
      echo "fuzz $name failed three times without a failing input" >&2
      exit 1
    fi
    # Marked, so the CI summary does not count a run that the next attempt redoes.
    sed -E 's/^(--- )?FAIL/retried: &/' "$out"
    rm -f "$out"
    echo "fuzz $name failed without a failing input; trying again" >&2
  done
  found=$((found + 1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | grep -v -e '^./bin/' -e '^./hack/tools/' || true)
echo "fuzz targets run: $found"
