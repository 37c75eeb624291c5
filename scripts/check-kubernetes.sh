#!/usr/bin/env bash
# Runs scripts/check-kubernetes.py (the Kubernetes manifests of deploy/kubernetes against the Kubernetes and CRD
# schemas) in a virtualenv of its pinned dependencies, target/check-kubernetes-venv, made when it is missing or
# the requirements changed (pip, from PyPI). `--install` only prepares the virtualenv; .ci/run does that in its
# own stage so that a failing install is told apart from a failing check.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=target/check-kubernetes-venv
requirements=scripts/check-kubernetes.requirements.txt
if ! cmp -s "$requirements" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi
if [ "${1:-}" = "--install" ]; then
  exit 0
fi
exec "$venv/bin/python" scripts/check-kubernetes.py "$@"
