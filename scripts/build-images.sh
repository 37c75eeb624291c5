#!/usr/bin/env bash
# Builds scrc's language images from Debian packages, for hosts without a container registry (this one, CI,
# air-gapped contest servers). Each image is a debootstrap'd Debian bookworm root imported with `docker import`.
# Idempotent: an image that already exists is skipped; pass --force to rebuild.
#
#   scripts/build-images.sh              build what is missing
#   scripts/build-images.sh --print-env  print the variables that point scrc at these images
#
# Needs root (debootstrap), debootstrap itself, and a reachable Debian mirror (DEBIAN_MIRROR).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
env_file="$here/../images/local.env"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
cache="${SCRC_DEB_CACHE:-/var/cache/scrc-debs}"
work="${SCRC_IMAGE_WORKDIR:-/tmp/scrc-images}"
force=0

case "${1:-}" in
  --print-env) grep -v '^#' "$env_file"; exit 0 ;;
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force|--print-env]" >&2; exit 2 ;;
esac

# image name -> packages on top of minbase. The static run image has no packages at all.
declare -A packages=(
  [scrc-local/debian:bookworm]=""
  [scrc-local/python:bookworm]="python3"
  [scrc-local/gcc:bookworm]="gcc g++ libc6-dev"
  [scrc-local/go:bookworm]="golang-go"
  [scrc-local/jdk:bookworm]="openjdk-17-jdk-headless"
  [scrc-local/jre:bookworm]="openjdk-17-jre-headless"
)

log() { printf '[build-images] %s\n' "$*" >&2; }

exists() { docker image inspect "$1" >/dev/null 2>&1; }

# Trims what no compiler or program needs, so images are smaller and import faster.
slim() {
  local root="$1"
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*
  find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} + 2>/dev/null || true
}

# Downloads every package the builds need into the shared cache, once, before they start. debootstrap's cache is not
# safe for concurrent writers: two builds fetching one package clobber each other's file.
fill_cache() {
  local include="$1" root="$work/download"
  rm -rf "$root"
  mkdir -p "$root" "$cache"
  local args=(--variant=minbase --download-only --cache-dir="$cache")
  if [ -n "$include" ]; then
    args+=(--include="${include// /,}")
  fi
  log "downloading packages ($include)"
  if ! debootstrap "${args[@]}" "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    return 1
  fi
  rm -rf "$root" "$root.log"
}

build_debian() {
  local image="$1" include="$2" name="${1//[\/:]/-}"
  local root="$work/$name" private="$cache/build-$name"
  rm -rf "$root" "$private"
  mkdir -p "$root" "$private"
  # A private cache of hard links to the shared one: whatever this build still downloads or deletes stays its own.
  find "$cache" -maxdepth 1 -name '*.deb' -exec ln -f -t "$private" {} +
  local args=(--variant=minbase --cache-dir="$private")
  if [ -n "$include" ]; then
    args+=(--include="${include// /,}")
  fi
  log "debootstrap $image ($include)"
  if ! debootstrap "${args[@]}" "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    rm -rf "$private"
    return 1
  fi
  rm -rf "$private"
  slim "$root"
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' - "$image" >/dev/null
  rm -rf "$root" "$root.log"
  log "built $image"
}

# The run image for statically linked programs (C, C++, Go): empty directories and a passwd entry for nobody.
build_static() {
  local image=scrc-local/static:bookworm root="$work/static"
  rm -rf "$root"
  mkdir -p "$root"/{tmp,etc,box,proc,dev,sys}
  # Writable by every user like /tmp: a warm sandbox mounts a tmpfs here, and Docker gives that tmpfs the mode of
  # the image's directory.
  chmod 1777 "$root/tmp" "$root/box"
  printf 'root:x:0:0:root:/root:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar --numeric-owner -C "$root" -c . | docker import --change 'ENV LANG=C.UTF-8' - "$image" >/dev/null
  rm -rf "$root"
  log "built $image"
}

if ! command -v docker >/dev/null; then
  log "docker is not installed"; exit 1
fi
all_present() {
  exists scrc-local/static:bookworm || return 1
  local image
  for image in "${!packages[@]}"; do
    exists "$image" || return 1
  done
}
if [ "$force" = 0 ] && all_present; then
  log "all images present"; exit 0
fi
if ! command -v debootstrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing debootstrap"
    apt-get install -y -qq debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  else
    log "debootstrap is missing: run 'sudo apt-get install debootstrap' and try again"; exit 1
  fi
fi
if [ "$(id -u)" != 0 ]; then
  log "debootstrap needs root: run 'sudo $0'"; exit 1
fi

mkdir -p "$work"
if [ "$force" = 1 ] || ! exists scrc-local/static:bookworm; then
  build_static
fi
wanted=()
for image in "${!packages[@]}"; do
  if [ "$force" = 1 ] || ! exists "$image"; then
    wanted+=("$image")
  fi
done
if [ "${#wanted[@]}" -gt 0 ]; then
  include=()
  for image in "${wanted[@]}"; do
    include+=(${packages[$image]})
  done
  fill_cache "${include[*]}"
fi
# Builds run in parallel: with the packages downloaded they are mostly waiting on dpkg.
pids=()
for image in "${wanted[@]}"; do
  build_debian "$image" "${packages[$image]}" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
if [ "$failed" = 1 ]; then
  log "some images failed to build"; exit 1
fi
log "done; point scrc at the images with: set -a; . images/local.env; set +a"
