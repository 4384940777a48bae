#!/usr/bin/env bash
# Runs the test suite once per Keras backend and prints each backend's summary.
# Exits non-zero if any backend fails or collects no test.
# Usage: scripts/test_backends.sh [PYTHON] [pytest args...]
set -u
python="${1:-.venv/bin/python}"
shift || true
backends="${BACKENDS:-tensorflow jax torch}"
status=0
summary=""
for backend in $backends; do
  echo "=== KERAS_BACKEND=$backend ==="
  log=$(mktemp)
  KERAS_BACKEND="$backend" "$python" -m pytest -q "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped|deselected)|no tests ran' "$log" | tail -n 1)
  rm -f "$log"
  if [ "$rc" -eq 5 ]; then
    line="collected no tests"
  fi
  summary+="$backend: ${line:-no summary} (exit $rc)"$'\n'
  [ "$rc" -ne 0 ] && status=1
done
echo "=== summary ==="
printf '%s' "$summary"
exit "$status"
