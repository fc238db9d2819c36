#!/usr/bin/env bash
# Ray's own job client against a Loom head (docs/jobs.md, "With Ray's
# client"). Outside `make test`: it downloads Ray into a venv of its own.
#
#   tests/ray_client/run.sh            # after `make build install-python`
#
# Starts a head (session root and ports of its own), then runs `ray job
# submit --working-dir`, `ray job status|logs|list|stop` and
# JobSubmissionClient against its job API; stops the head either way.
set -euo pipefail
RAY_VERSION=${RAY_VERSION:-2.40.0}
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${RAY_CLIENT_VENV:-$repo/build/ray-client-venv}
loom=$repo/.venv/bin/loom
[ -x "$loom" ] || { echo "run 'make install-python' first" >&2; exit 2; }
if [ ! -x "$venv/bin/ray" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "ray[default]==$RAY_VERSION"
fi
root=$(mktemp -d /tmp/loom-ray-client-XXXXXX)
work=$(mktemp -d /tmp/loom-ray-client-wd-XXXXXX)
cleanup() { "$loom" stop --session-root "$root" >/dev/null 2>&1 || true; rm -rf "$root" "$work"; }
trap cleanup EXIT
"$loom" start --head --port 0 --dashboard-port 0 --num-cpus 2 --session-root "$root" >/dev/null
session=$root/session_latest
address=http://$(cat "$session/dashboard_address")
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=$(cat "$session/auth_token")
# Ray's clients send the token only in its newest releases: pass it as a
# header too.
export RAY_JOB_HEADERS="{\"Authorization\": \"Bearer $RAY_AUTH_TOKEN\"}"
unset RAY_ADDRESS
cat > "$work/script.py" <<'PY'
import loom
loom.init()

@loom.remote
def square(i):
    return i * i

print("sum", sum(loom.get([square.remote(i) for i in range(4)])))
PY
py=$repo/.venv/bin/python
echo "== ray job submit (follows the WebSocket tail)"
out=$("$venv/bin/ray" job submit --address "$address" --working-dir "$work" \
      --submission-id ray-client-1 -- "$py" script.py 2>&1)
echo "$out"
grep -q "sum 14" <<<"$out"
grep -qi "succeeded" <<<"$out"
echo "== ray job status / logs / list"
"$venv/bin/ray" job status --address "$address" ray-client-1 2>&1 | grep -qi succeeded
"$venv/bin/ray" job logs --address "$address" ray-client-1 2>&1 | grep -q "sum 14"
"$venv/bin/ray" job list --address "$address" 2>&1 | grep -q "submission_id='ray-client-1'"
echo "== ray job stop"
"$venv/bin/ray" job submit --address "$address" --no-wait \
  --submission-id ray-client-2 -- sleep 600 >/dev/null
sleep 2
"$venv/bin/ray" job stop --address "$address" ray-client-2 2>&1 | grep -qi stopped
echo "== JobSubmissionClient"
"$venv/bin/python" - "$address" "$RAY_AUTH_TOKEN" <<'PY'
import sys, time
from ray.job_submission import JobSubmissionClient, JobStatus
client = JobSubmissionClient(sys.argv[1],
                             headers={"Authorization": f"Bearer {sys.argv[2]}"})
job = client.submit_job(entrypoint="echo from-ray-sdk", submission_id="ray-client-3")
for _ in range(300):
    if client.get_job_status(job).is_terminal():
        break
    time.sleep(0.1)
assert client.get_job_status(job) == JobStatus.SUCCEEDED
assert "from-ray-sdk" in client.get_job_logs(job)
assert client.delete_job(job)
print("JobSubmissionClient: ok")
PY
echo "ray client against loom: all passed"
