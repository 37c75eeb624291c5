#!/usr/bin/env bash
# Builds the deployment images on a host without a container registry (this machine, CI, air-gapped servers):
#
#   scrc-local/runtime:trixie  runtime base: Debian trixie (debootstrap) with OpenSSL, zlib and CA certificates
#   scrc-local/rust:trixie     builder base: the runtime base plus rustc and cargo from trixie-backports and a C
#                              toolchain, all Debian packages
#   scrc-local/tansu:0.6.0     a Kafka-protocol broker: tansu from crates.io (built once, cached in target/tansu)
#   scrc:local                 the runner image, built from the Dockerfile on those bases, offline from crates
#                              vendored into target/vendor; rebuilt when the sources change
#
# Bases and broker are skipped when present (--force rebuilds everything). Needs root, Docker, and the Debian
# mirror and crates.io (both package registries) from the host.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="${SCRC_IMAGE_WORKDIR:-/tmp/scrc-images}"
cache="${SCRC_DEB_CACHE:-/var/cache/scrc-debs}"
tansu_version=0.6.0
force=0
bench=0
for argument in "$@"; do
  case "$argument" in
    --force) force=1 ;;
    --bench) bench=1 ;;  # also the benchmark harness image (compose profile `benchmark`)
    *) echo "usage: $0 [--force] [--bench]" >&2; exit 2 ;;
  esac
done

log() { printf '[build-deploy-images] %s\n' "$*" >&2; }
exists() { [ "$force" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }

# Runs a long step with its output in a log, saying every 30 s how long it has run and its latest line (a `docker
# build` step, a crate being compiled), and showing the log's end if it fails. Its stdin is the caller's.
step() {
  local what=$1; shift
  local output; output=$(mktemp)
  local started=$SECONDS next=30
  # `<&0` keeps the caller's stdin (a Dockerfile here-document): a background job's would be /dev/null.
  "$@" <&0 >"$output" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - started >= next )); then
      log "$what: $((SECONDS - started)) s, at: $(grep -v '^ *$' "$output" | tail -n 1 | cut -c1-100)"
      next=$((next + 30))
    fi
  done
  if ! wait "$pid"; then
    tail -n 40 "$output" >&2
    rm -f "$output"
    log "$what: failed after $((SECONDS - started)) s"
    exit 1
  fi
  rm -f "$output"
  log "$what: done in $((SECONDS - started)) s"
}

scripts/build-images.sh >/dev/null  # the bookworm base and language images, if missing

if ! exists scrc-local/runtime:trixie; then
  log "debootstrap the trixie runtime base"
  root="$work/runtime-trixie"
  rm -rf "$root"; mkdir -p "$root" "$cache"
  debootstrap --variant=minbase --cache-dir="$cache" --include=ca-certificates,libssl3t64,zlib1g \
    trixie "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' - scrc-local/runtime:trixie >/dev/null
  rm -rf "$root" "$root.log"
  log "built scrc-local/runtime:trixie"
fi

if ! exists scrc-local/rust:trixie; then
  log "build the Rust builder base (rustc and cargo from trixie-backports)"
  step "scrc-local/rust:trixie" docker build -t scrc-local/rust:trixie --build-arg "MIRROR=$mirror" - <<'DOCKERFILE'
FROM scrc-local/runtime:trixie
ARG MIRROR
RUN echo "deb $MIRROR trixie main" > /etc/apt/sources.list \
 && echo "deb $MIRROR trixie-backports main" > /etc/apt/sources.list.d/backports.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends -t trixie-backports rustc cargo \
 && apt-get install -y --no-install-recommends gcc g++ libc6-dev make perl pkg-config libssl-dev zlib1g-dev \
      libfontconfig1-dev libfreetype-dev \
 && rm -rf /var/lib/apt/lists/*
DOCKERFILE
  log "built scrc-local/rust:trixie ($(docker run --rm scrc-local/rust:trixie rustc --version))"
fi

if ! exists "scrc-local/tansu:$tansu_version"; then
  if [ ! -x target/tansu/bin/tansu ]; then
    log "cargo install tansu $tansu_version (8–14 minutes on 2 cores; cached in target/tansu)"
    step "cargo install tansu" \
      cargo install tansu --version "$tansu_version" --features dynostore,libsql --root target/tansu --locked
  fi
  log "build scrc-local/tansu:$tansu_version"
  step "scrc-local/tansu:$tansu_version" docker build -t "scrc-local/tansu:$tansu_version" -f - target/tansu <<'DOCKERFILE'
FROM scrc-local/runtime:trixie
COPY bin/tansu /usr/local/bin/tansu
RUN mkdir -p /var/lib/tansu && chown 10001:10001 /var/lib/tansu
USER 10001:10001
WORKDIR /var/lib/tansu
ENTRYPOINT ["tansu"]
DOCKERFILE
fi

# The runner image follows the sources: its label records what it was built from.
source_id="$( (git ls-files -s; git diff HEAD) 2>/dev/null | sha256sum | cut -c1-16)"
built_from="$(docker image inspect -f '{{ index .Config.Labels "scrc.source" }}' scrc:local 2>/dev/null || true)"
if [ "$force" = 1 ] || [ "$built_from" != "$source_id" ]; then
  log "vendor the crates into target/vendor"
  cargo vendor --locked --versioned-dirs --quiet target/vendor >/dev/null
  log "build scrc:local from the Dockerfile (offline, on the local bases)"
  step "scrc:local" docker build \
    --build-arg BUILDER_IMAGE=scrc-local/rust:trixie \
    --build-arg RUNTIME_IMAGE=scrc-local/runtime:trixie \
    --label "scrc.source=$source_id" \
    -t scrc:local .
  if [ "$bench" = 1 ]; then
    step "scrc-bench:local" docker build -f Dockerfile.bench \
      --build-arg BUILDER_IMAGE=scrc-local/rust:trixie \
      --build-arg RUNTIME_IMAGE=scrc-local/runtime:trixie \
      --label "scrc.source=$source_id" \
      -t scrc-bench:local .
  fi
else
  log "scrc:local is up to date"
fi
