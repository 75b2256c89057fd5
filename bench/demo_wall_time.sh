#!/usr/bin/env bash
# `gameday demo` wall time on a fresh clone: first `make demo` from scratch (venv creation and pip install
# included), then `make demo` again with everything installed. Results go to a temporary GAMEDAY_DATA_DIR.
#
#   bash bench/demo_wall_time.sh [REPO]     # REPO: what to clone; default the repository holding this script
#
# The clone holds committed work only: uncommitted changes in REPO are not measured. pip uses its normal
# configuration (index, mirror, cache); the cache's size is printed because a warm cache makes the install
# faster than on a new machine. Exit status: non-zero if a demo run failed (its log is printed).
set -euo pipefail

repo="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
work="$(mktemp -d -t gameday-demo-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export GAMEDAY_DATA_DIR="$work/data"

now_ns() { date +%s%N; }
seconds_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

echo "== gameday demo wall time =="
echo "  nproc $(nproc), CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), memory $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "  $(${PY:-python3} --version), make $(make --version | head -1 | awk '{print $3}'), $(uname -sr), $(date -u '+%Y-%m-%d %H:%M') UTC"
cache="$(${PY:-python3} -m pip cache dir 2>/dev/null || true)"
if [ -n "$cache" ] && [ -d "$cache" ]; then
    echo "  pip cache: $cache, $(du -sh "$cache" | cut -f1) (a warm cache shortens the fresh install)"
else
    echo "  pip cache: absent (${cache:-no cache dir}): every package is fetched from the configured index"
fi

clone_started="$(now_ns)"
git clone -q "$repo" "$work/gameday"
echo "  cloned $repo at $(git -C "$work/gameday" log -1 --format='%h %s' | cut -c1-70) in $(seconds_since "$clone_started") s"

failed=0
time_demo() {
    local label="$1" log="$work/$1.log" started status
    started="$(now_ns)"
    set +e
    make -C "$work/gameday" demo >"$log" 2>&1
    status=$?
    set -e
    printf '  %-38s %7s s  (exit %d, %s)\n' "make demo, $label" "$(seconds_since "$started")" "$status" \
        "$(grep -m1 -Eo '(RESILIENT|DEVIATED|NOT_STEADY|ABORTED|NOT_RECOVERED|ERROR):' "$log" | tr -d : || echo 'no verdict')"
    # The drill's own phases, as `gameday demo` printed them: the part of the wall time that is the drill.
    grep -E '^ +(preflight|inject|observe|rollback|verify|record) ' "$log" | sed 's/^ */      /' || true
    if [ "$status" -ne 0 ]; then
        failed=1
        echo "---- $label: last lines of its output ----"
        tail -n 40 "$log"
    fi
}

time_demo "fresh clone (venv + install)"
time_demo "installed"
exit "$failed"
