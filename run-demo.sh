#!/usr/bin/env bash
# Builds replstor if needed, then runs a local replicated cluster: two repld processes on loopback
# replicating resource r0 (1 GiB, protocol C), Primary on the first node, live status until Ctrl-C.
# Arguments go to `replctl demo` (e.g. --nodes 3, --size 4GiB, --protocol A, --detach --json).
# Environment: REPLSTOR_DEMO_DIR (default /tmp/replstor-demo).
set -euo pipefail
root=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
dir=${REPLSTOR_DEMO_DIR:-/tmp/replstor-demo}
stale() {
  [ ! -f "$1" ] || [ -n "$(find "$root" \( -name '*.java' -o -name pom.xml \) -not -path '*/target/*' -newer "$1" -print -quit)" ]
}
if stale "$root/cluster/target/cluster.jar" || stale "$root/replctl/target/replctl.jar"; then
  echo "building replstor (mvn -DskipTests package) ..."
  (cd "$root" && mvn -B -q -ntp -DskipTests package)
fi
if [ "${1:-}" = down ]; then
  exec "$root/bin/replctl" demo down --dir "$dir"
fi
exec "$root/bin/replctl" demo --dir "$dir" "$@"
