#!/usr/bin/env bash
# Installs gVisor's runsc from Debian's packages and registers it with the local Docker engine as the runtime
# "runsc", beside runc, which stays the default. Idempotent: a runtime already registered is left as it is.
#
#   scripts/install-gvisor.sh
#
# Needs root (apt-get, /etc/docker/daemon.json) and a Docker engine that reloads its runtimes on SIGHUP (any since
# 1.13). scrc uses it for sandboxes when RUNNER_DOCKER_RUNTIME=runsc. runsc runs with --network=none: sandboxes have
# no network anyway, and gVisor's own network stack is kernel surface scrc does not need.
set -euo pipefail

daemon_json=${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}

if ! command -v runsc >/dev/null 2>&1; then
  echo "install-gvisor: installing runsc from Debian's packages" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends runsc >/dev/null
fi
runsc_path=$(command -v runsc)

if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
  echo "install-gvisor: the engine already knows the runtime runsc" >&2
  exit 0
fi

mkdir -p "$(dirname "$daemon_json")"
[ -s "$daemon_json" ] || echo '{}' >"$daemon_json"
python3 - "$daemon_json" "$runsc_path" <<'PY'
import json, sys
path, runsc = sys.argv[1], sys.argv[2]
with open(path) as f:
    config = json.load(f)
config.setdefault("runtimes", {})["runsc"] = {"path": runsc, "runtimeArgs": ["--network=none"]}
with open(path + ".scrc-new", "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
PY
mv "$daemon_json.scrc-new" "$daemon_json"

# SIGHUP makes dockerd reload its runtimes without touching running containers.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker 2>/dev/null; then
  systemctl reload docker
else
  pkill -HUP -x dockerd
fi
for _ in $(seq 1 50); do
  if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
    echo "install-gvisor: the engine now offers the runtime runsc" >&2
    exit 0
  fi
  sleep 0.2
done
echo "install-gvisor: the engine did not pick up the runtime runsc from $daemon_json" >&2
exit 1
