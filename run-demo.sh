#!/usr/bin/env bash
# Builds replstor if needed and serves a 1 GiB demo volume over NBD on 127.0.0.1 until Ctrl-C.
# Environment: REPLSTOR_DEMO_DIR (default /tmp/replstor-demo), REPLSTOR_DEMO_PORT (default 10809).
set -euo pipefail
root=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
dir=${REPLSTOR_DEMO_DIR:-/tmp/replstor-demo}
port=${REPLSTOR_DEMO_PORT:-10809}
if [ ! -f "$root/cluster/target/cluster.jar" ] || [ -n "$(find "$root" -name '*.java' -path '*/src/main/*' -newer "$root/cluster/target/cluster.jar" -print -quit)" ]; then
  echo "building replstor (mvn -DskipTests package) ..."
  (cd "$root" && mvn -B -q -ntp -DskipTests package)
fi
mkdir -p "$dir"
uri="nbd://127.0.0.1:$port/demo"
cat <<MSG
replstor demo: serving $dir/demo.img (1 GiB, sparse) as export 'demo'
  URI:       $uri
  inspect:   nbdinfo $uri
  write:     qemu-io -f raw $uri -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M'
  copy in:   nbdcopy disk.img $uri
  benchmark: fio --name=demo --ioengine=nbd --uri=$uri --rw=randwrite --bs=4k --iodepth=32 --size=256M
Ctrl-C stops the server (in-flight requests finish and the volume is flushed).
MSG
exec "$root/bin/repld" serve --listen "127.0.0.1:$port" \
  --export "demo=$dir/demo.img,size=1GiB,description=replstor demo volume"
