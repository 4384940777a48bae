#!/usr/bin/env bash
# Runs the test suite once per Keras backend; prints each backend's summary, wall time and
# slowest tests. Exits non-zero if any backend fails, or if no backend runs a test (a backend
# whose tests all run under another backend of the run, as for some subsets, is no failure).
#
# Usage: scripts/test_backends.sh [PYTHON] [pytest args...]
#   BACKENDS="jax" scripts/test_backends.sh      one backend only (BACKENDS=jax make test)
#   TEST_REPORTS=DIR scripts/test_backends.sh    also writes DIR/<backend>.xml (JUnit, every
#                                                test's time)
#
# Tests marked `backend_independent` run once, under the first backend of BACKENDS; tests
# marked `spread_over_backends` run on one backend each, by turns (see tests/conftest.py).
# Torch comes first by default: its eager steps compile nothing, the cheapest host for them.
set -u
python="${1:-.venv/bin/python}"
shift || true
backends="${BACKENDS:-torch tensorflow jax}"
export KERAS_MLCL_TEST_BACKENDS="$backends"
status=0
passed=0
summary=""
total_start=$(date +%s)
for backend in $backends; do
  echo "=== KERAS_BACKEND=$backend ==="
  log=$(mktemp)
  start=$(date +%s)
  report=()
  if [ -n "${TEST_REPORTS:-}" ]; then
    mkdir -p "$TEST_REPORTS"
    report=(--junitxml="$TEST_REPORTS/$backend.xml")
  fi
  KERAS_BACKEND="$backend" "$python" -m pytest -q --durations=15 --durations-min=0.5 \
    ${report[@]+"${report[@]}"} "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  seconds=$(( $(date +%s) - start ))
  line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped|deselected)|no tests ran' "$log" \
    | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
  rm -f "$log"
  if [ "$rc" -eq 5 ] && [[ "$line" == *deselected* ]]; then
    rc=0  # a subset of the suite whose every test runs under another backend of the run
  elif [ "$rc" -eq 5 ]; then
    line="ran no test"
  fi
  [[ "$line" =~ ([0-9]+)\ passed ]] && passed=$(( passed + BASH_REMATCH[1] ))
  summary+="$backend: ${line:-no summary}, wall ${seconds} s (exit $rc)"$'\n'
  [ "$rc" -ne 0 ] && status=1
done
echo "=== summary ==="
printf '%s' "$summary"
echo "all backends: $(( $(date +%s) - total_start )) s, $passed passed"
if [ "$passed" -eq 0 ]; then
  echo "error: no backend ran a test" >&2
  status=1
fi
exit "$status"
