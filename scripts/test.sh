#!/usr/bin/env bash
# The full test suite. Builds the local language images and the deployment images when they are missing
# (scripts/build-images.sh, scripts/build-deploy-images.sh), then runs every test of the workspace: unit and
# property tests, the app against fakes, the Kafka adapters against the embedded broker, the Docker runtime against
# the real engine, the simulator and benchmark harness, and the deployment against an out-of-process broker and
# Compose; and the Kubernetes manifests against their schemas (scripts/check-kubernetes.sh).
#
# Tests that need Docker skip on a machine without it, except under CI=true, where they fail instead. The sandbox
# suites run three times: with the artifact cache on, with it off (RUNNER_ARTIFACT_CACHE_BYTES=0, so that every
# script is compiled), and under gVisor (RUNNER_DOCKER_RUNTIME=runsc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if docker info >/dev/null 2>&1; then
  scripts/build-images.sh
  scripts/build-deploy-images.sh
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: CI=true and the Docker engine is unreachable" >&2
  exit 1
else
  echo "test.sh: no Docker engine: the Docker tests will skip" >&2
fi

status=0
# The Kubernetes manifests against the Kubernetes and CRD schemas (tests/kubernetes.rs, run below, checks their
# arithmetic against scrc's configuration). Needs PyPI the first time, for its virtualenv.
scripts/check-kubernetes.sh || status=$?
cargo test --workspace --locked --no-fail-fast "$@" || status=$?
# The verdict suites again with the artifact cache off: a program the suites send twice is compiled twice.
RUNNER_ARTIFACT_CACHE_BYTES=0 cargo test --locked --no-fail-fast --test docker_verdicts --test docker_adversarial \
  --test docker_warm --test docker_toolchains "$@" || status=$?
# And under gVisor (RUNNER_DOCKER_RUNTIME=runsc), when the engine offers it (scripts/install-gvisor.sh registers
# it; .ci/run does): every verdict, hostile program and carry-over test must come out the same in its sandbox.
if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
  # One test at a time: every system call costs more under gVisor, and two tests' sandboxes at once on two cores made
  # a Python start take seconds.
  RUNNER_DOCKER_RUNTIME=runsc cargo test --locked --no-fail-fast --test docker_verdicts --test docker_adversarial \
    --test docker_warm "$@" -- --test-threads=1 || status=$?
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: CI=true and the engine has no runtime runsc (scripts/install-gvisor.sh registers it)" >&2
  status=1
else
  echo "test.sh: the engine has no runtime runsc: the gVisor pass is skipped (scripts/install-gvisor.sh)" >&2
fi
exit "$status"
