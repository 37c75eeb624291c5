#!/bin/sh
# Builds release binaries inside the Dockerfile's builder stages: offline from target/vendor when the crates were
# vendored there (hosts without network access to crates.io), from crates.io otherwise.
set -eu
if [ -d target/vendor ]; then
  mkdir -p .cargo
  printf '[source.crates-io]\nreplace-with = "vendored"\n\n[source.vendored]\ndirectory = "target/vendor"\n' \
    > .cargo/config.toml
  exec cargo build --release --locked --offline "$@"
fi
exec cargo build --release --locked "$@"
