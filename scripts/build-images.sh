#!/usr/bin/env bash
# Builds scrc's language images from Debian packages, for hosts without a container registry (this one, CI,
# air-gapped contest servers). Each image is a debootstrap'd Debian bookworm root imported with `docker import`.
# Idempotent: an image that already exists is skipped; pass --force to rebuild. An image whose content changes gets a
# new tag (`bookworm-3`), so that hosts holding the old one build the new one.
#
# The build images come warm: what every build would otherwise redo is done once here, inside the image's root,
# into read-only files that builds only read (see "Warm toolchains" below and README "Language images").
#
#   scripts/build-images.sh                  build what is missing
#   scripts/build-images.sh IMAGE...         build what is missing of these images only (scrc-demo names those of
#                                            its languages), downloading only their packages
#   scripts/build-images.sh --plan [IMAGE...] print the packages each image needs, and their union, and exit
#   scripts/build-images.sh --print-env      print the variables that point scrc at these images
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
plan=0
named=()

for arg in "$@"; do
  case "$arg" in
    --print-env) grep -v '^#' "$env_file"; exit 0 ;;
    --force) force=1 ;;
    --plan) plan=1 ;;
    scrc-local/*) named+=("$arg") ;;
    *) echo "usage: $0 [--force|--plan|--print-env] [scrc-local/IMAGE:TAG...]" >&2; exit 2 ;;
  esac
done

# image name -> packages on top of minbase. The static run image has no packages at all.
declare -A packages=(
  [scrc-local/debian:bookworm]=""
  [scrc-local/python:bookworm]="python3"
  [scrc-local/gcc:bookworm-2]="gcc g++ libc6-dev"
  [scrc-local/go:bookworm-3]="golang-go"
  [scrc-local/jdk:bookworm-3]="openjdk-17-jdk-headless"
  [scrc-local/jre:bookworm]="openjdk-17-jre-headless"
  [scrc-local/node:bookworm]="nodejs"
  [scrc-local/typescript:bookworm]="node-typescript"
  [scrc-local/ruby:bookworm]="ruby"
  [scrc-local/php:bookworm]="php8.2-cli"
  [scrc-local/rustc:bookworm]="rustc libc6-dev"
  [scrc-local/kotlin:bookworm]="kotlin openjdk-17-jdk-headless"
  [scrc-local/mono:bookworm]="mono-mcs"
  [scrc-local/mono-runtime:bookworm]="mono-runtime libmono-system-core4.0-cil libmono-system-numerics4.0-cil"
)

# Warm toolchains: image name -> the function that prepares it inside its root, after debootstrap. Each writes only
# root-owned files that builds (uid 65534, read-only root filesystem) can read but never change, so no build can alter
# what the next one starts from. Each must use exactly the flags and environment of the build command in
# src/adapters/docker/languages/, or what it prepares is silently not used.
declare -A warmers=(
  [scrc-local/gcc:bookworm-2]=warm_gcc
  [scrc-local/go:bookworm-3]=warm_go
  [scrc-local/jdk:bookworm-3]=warm_jdk
)

# Toolchain directories: image name -> the directories, separated by `:`, that no build writes and that every build
# reads. They become the image's `org.scrc.shared-dirs` label; on a storage driver whose containers do not share the
# image's page cache (fuse-overlayfs), the runner copies them into volumes once and mounts those read-only into
# every sandbox of the image, so a new container does not read its toolchain from disk again (README "Language
# images", src/adapters/docker/shared_dirs.rs).
declare -A shared_dirs=(
  [scrc-local/go:bookworm-3]="/usr/lib/go-1.19:/usr/share/go-1.19:/opt/scrc"
  [scrc-local/jdk:bookworm-3]="/usr/lib/jvm:/opt/scrc"
)

# Runs the shell script on stdin as root inside the image root, with /proc (the JVM and the go command need it) and
# device nodes (debootstrap makes them, except where it cannot and leaves /dev empty), in a clean environment.
in_root() {
  local root="$1" status=0
  mount -t proc proc "$root/proc"
  if [ ! -c "$root/dev/null" ]; then
    mount --bind /dev "$root/dev"
  fi
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8 \
    chroot "$root" /bin/sh -eu || status=$?
  release_mounts "$root"
  rm -rf "${root:?}"/tmp/*
  return "$status"
}

# Unmounts what in_root mounted, also after an interrupted run, before anything deletes the root: `rm -rf` must
# never reach the host's /dev through a bind mount.
release_mounts() {
  umount "$1/dev" 2>/dev/null || true
  umount "$1/proc" 2>/dev/null || true
}

# C and C++: precompiled headers for the two headers students start programs with, next to each header, so g++
# finds and uses them by itself when a program includes the header first (gcc checks each is valid for the
# compile's flags and ignores it otherwise). Built with the flags of `gcc()` in languages/mod.rs that matter to a PCH
# (-O2 -std=gnu++17); each is compiled through a one-line wrapper so the header is an include, as in a program, and
# its `#pragma GCC system_header` holds. Programs that include neither parse their headers as before.
# The default linker becomes gold: it links the static libstdc++ programs in half the time of ld.bfd.
warm_gcc() {
  in_root "$1" <<'SCRIPT'
flags="-O2 -std=gnu++17"
pch() {
  printf '#include <%s>\n' "$1" >/tmp/pch.h
  g++ $flags -x c++-header /tmp/pch.h -o "$2.gch"
}
pch bits/stdc++.h /usr/include/x86_64-linux-gnu/c++/12/bits/stdc++.h
pch iostream /usr/include/c++/12/iostream
ln -sf x86_64-linux-gnu-ld.gold /usr/bin/ld
SCRIPT
}

# Go: a build cache holding the standard library packages programs use, built with the environment of go.rs's
# build_env (only GOCACHE differs). Each build copies it into its own GOCACHE under /tmp before `go build`.
warm_go() {
  in_root "$1" <<'SCRIPT'
export CGO_ENABLED=0 GOCACHE=/opt/scrc/go-cache GOPATH=/tmp/go GOFLAGS=-buildvcs=false GOTOOLCHAIN=local GOPROXY=off
mkdir -p /opt/scrc /tmp/warm
cd /tmp/warm
cat >main.go <<'GO'
package main

import (
	"bufio"
	"bytes"
	"container/heap"
	"container/list"
	"container/ring"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/bits"
	"math/rand"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

type ints []int

func (h ints) Len() int            { return len(h) }
func (h ints) Less(i, j int) bool  { return h[i] < h[j] }
func (h ints) Swap(i, j int)       { h[i], h[j] = h[j], h[i] }
func (h *ints) Push(x interface{}) { *h = append(*h, x.(int)) }
func (h *ints) Pop() interface{}   { old := *h; x := old[len(old)-1]; *h = old[:len(old)-1]; return x }

func main() {
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	var n int
	fmt.Fscan(in, &n)
	h := &ints{3, 1, 2}
	heap.Init(h)
	l := list.New()
	l.PushBack(ring.New(2).Len())
	var once sync.Once
	once.Do(func() {})
	b := new(big.Int).Exp(big.NewInt(2), big.NewInt(64), nil)
	s := strings.Fields(strconv.Itoa(n) + " " + b.String())
	sort.Strings(s)
	_, _ = io.WriteString(out, string(bytes.ToUpper([]byte(s[0]))))
	fmt.Fprintln(out, math.Sqrt(2), bits.OnesCount(uint(n)), rand.Intn(10), time.Second, unicode.IsDigit('1'),
		utf8.RuneLen('x'), regexp.MustCompile("a+").MatchString("aa"), errors.New("e"), l.Len())
}
GO
go build -o prog main.go
SCRIPT
}

# Java: a class-data sharing archive of the classes javac loads, dumped at the exit of a compile of a representative
# program with java.rs's javac flags. Builds map it with -J-XX:SharedArchiveFile; with -Xshare:auto a missing or
# mismatched archive is silently not used.
warm_jdk() {
  in_root "$1" <<'SCRIPT'
mkdir -p /opt/scrc /tmp/warm
cd /tmp/warm
cat >Main.java <<'JAVA'
import java.io.*;
import java.util.*;
import java.util.stream.*;

public class Main {
    record Pair(int a, long b) {}

    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringTokenizer st = new StringTokenizer(in.readLine());
        Scanner scanner = new Scanner(System.in);
        int n = Integer.parseInt(st.nextToken());
        List<Integer> list = new ArrayList<>();
        Map<String, Long> map = new HashMap<>();
        Deque<int[]> queue = new ArrayDeque<>();
        PriorityQueue<Pair> heap = new PriorityQueue<>(Comparator.comparingLong(Pair::b));
        TreeMap<Integer, Integer> tree = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            list.add(i);
            map.merge("k" + i % 3, (long) i, Long::sum);
            heap.add(new Pair(i, i * 2L));
            tree.put(i, i);
        }
        queue.add(new int[] {n});
        Collections.sort(list, Collections.reverseOrder());
        String joined = list.stream().map(String::valueOf).collect(Collectors.joining(" "));
        long sum = IntStream.range(0, n).asLongStream().sum();
        StringBuilder out = new StringBuilder();
        out.append(String.format("%d %.3f%n", sum, Math.sqrt(sum))).append(joined).append('\n');
        List raw = new ArrayList(); // unchecked: the "Note:" diagnostics path is archived too
        raw.add(scanner.hasNext() ? scanner.next() : "");
        PrintWriter pw = new PrintWriter(new BufferedWriter(new OutputStreamWriter(System.out)));
        pw.print(out);
        pw.println(Arrays.toString(new int[] {queue.size(), heap.size(), tree.size(), map.size(), raw.size()}));
        pw.flush();
    }
}
JAVA
javac -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -J-XX:-UsePerfData -J-Xshare:auto \
  -J-XX:ArchiveClassesAtExit=/opt/scrc/javac.jsa -encoding UTF-8 -d . Main.java
chmod 0644 /opt/scrc/javac.jsa
SCRIPT
}

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
  release_mounts "$root"
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
  if [ -n "${warmers[$image]:-}" ] && ! "${warmers[$image]}" "$root" >"$root.log" 2>&1; then
    log "warming $image failed"
    tail -n 30 "$root.log" >&2
    return 1
  fi
  slim "$root"
  local changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENV LANG=C.UTF-8')
  if [ -n "${shared_dirs[$image]:-}" ]; then
    changes+=(--change "LABEL org.scrc.shared-dirs=${shared_dirs[$image]}")
  fi
  tar --numeric-owner -C "$root" -c . | docker import "${changes[@]}" - "$image" >/dev/null
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

# The images asked for: those named, or every one. The static run image has no packages.
static=scrc-local/static:bookworm
selected=()
want_static=0
if [ "${#named[@]}" -eq 0 ]; then
  selected=("${!packages[@]}")
  want_static=1
fi
for image in "${named[@]}"; do
  if [ "$image" = "$static" ]; then
    want_static=1
  elif [ -n "${packages[$image]+known}" ]; then
    selected+=("$image")
  else
    log "unknown image $image (images/local.env lists them)"; exit 2
  fi
done

if [ "$plan" = 1 ]; then
  union=()
  for image in "${selected[@]}"; do
    printf '%s: %s\n' "$image" "${packages[$image]}"
    union+=(${packages[$image]})
  done
  [ "$want_static" = 0 ] || printf '%s: \n' "$static"
  printf 'packages: %s\n' "$(printf '%s\n' "${union[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//')"
  exit 0
fi

if ! command -v docker >/dev/null; then
  log "docker is not installed"; exit 1
fi
all_present() {
  [ "$want_static" = 0 ] || exists "$static" || return 1
  local image
  for image in "${selected[@]}"; do
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
if [ "$want_static" = 1 ] && { [ "$force" = 1 ] || ! exists "$static"; }; then
  build_static
fi
wanted=()
for image in "${selected[@]}"; do
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
