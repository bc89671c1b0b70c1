#!/usr/bin/env bash
# Soak the fault tests: run tests/test_faults.py N times in a row (default 50) and report every
# failure, so a flaky hang (issue 16: one Ctrl-C in six ignored) shows up before CI sees it.
# Not part of `make test` (it takes N times as long).
#
#   scripts/soak_faults.sh            # 50 rounds of the whole file
#   scripts/soak_faults.sh 20         # 20 rounds
#   scripts/soak_faults.sh 100 -k stalled_decode   # extra arguments go to pytest
#
# Each round's output is kept in a log folder (printed at the end); the exit status is 0 only
# when every round passed.  PYTHON=... picks another interpreter (default .venv/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-50}
shift || true
case "$rounds" in
  ''|*[!0-9]*) echo "usage: scripts/soak_faults.sh [ROUNDS] [PYTEST ARGS...]" >&2; exit 2 ;;
esac
python=${PYTHON:-.venv/bin/python}
logs=$(mktemp -d "${TMPDIR:-/tmp}/soak-faults.XXXXXX")
failed=0
began=$(date +%s)
echo "soak: $rounds rounds of tests/test_faults.py $*; $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
     "(+ working tree), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for round in $(seq 1 "$rounds"); do
  start=$(date +%s)
  log="$logs/round-$round.log"
  if "$python" -m pytest tests/test_faults.py -q -p no:cacheprovider "$@" >"$log" 2>&1; then
    verdict=ok
  else
    verdict=FAILED
    failed=$((failed + 1))
  fi
  echo "round $round/$rounds: $verdict in $(( $(date +%s) - start )) s, load $(cut -d' ' -f1 /proc/loadavg): $(tail -n 1 "$log")"
  if [ "$verdict" = FAILED ]; then
    grep -E "^(FAILED|ERROR) " "$log" | sed 's/^/    /'
  fi
done
echo "soak: $rounds rounds, $failed failed, $(( $(date +%s) - began )) s; logs in $logs"
[ "$failed" -eq 0 ]
