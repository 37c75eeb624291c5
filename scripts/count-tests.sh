#!/usr/bin/env bash
# The suite's tests counted per target from cargo's own list, for the README's Development section (a proptest
# counts once, whatever cases it generates). Builds the tests first if they are not built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --workspace --locked -- --list 2>&1 | awk '
  /^ *Running / {
    crate = $NF; sub(/^.*deps\//, "", crate); sub(/-[0-9a-f]+\)$/, "", crate)
    target = ($2 == "unittests") ? crate " " $3 : $2
  }
  /^ *Doc-tests / { target = "doc-tests " $2 }
  /: test$/ { count[target]++; total++ }
  END {
    for (t in count) printf "%5d  %s\n", count[t], t
    printf "%5d  total\n", total
  }' | sort -k2
