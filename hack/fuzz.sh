#!/usr/bin/env bash
# Runs every Go fuzz target briefly (each for the given time, default 10s). Seed corpora
# live in testdata/fuzz/ beside each target and run in plain `go test` too.
#
# A failing input is written to testdata/fuzz/<Target>/ and fails the run. A run that
# fails without writing one (a fuzz worker lost to the machine's load, not to the code)
# is tried once more, and said so. One fuzz worker: on a loaded 2-core CI machine a second
# one starves and the run dies with "context deadline exceeded".
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
  out=$(mktemp)
  if ! go test -run='^$' -parallel=1 -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" >"$out" 2>&1; then
    if [[ $(inputs "$corpus") != "$before" ]]; then
      cat "$out"
      rm -f "$out"
      echo "fuzz $name found a failing input: see $corpus" >&2
      exit 1
    fi
    # Marked, so the CI summary does not count a run that the retry redoes as a failure.
    sed -E 's/^(--- )?FAIL/retried: &/' "$out"
    rm -f "$out"
    echo "fuzz $name failed without a failing input; trying once more" >&2
    go test -run='^$' -parallel=1 -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg"
  else
    cat "$out"
    rm -f "$out"
  fi
  found=$((found + 1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | grep -v -e '^./bin/' -e '^./hack/tools/' || true)
echo "fuzz targets run: $found"
