#!/usr/bin/env bash
# The action's database step (`db: check`): reads each [[database]] table through the URL in
# its url_env variable (set it in the job's env from a secret) and compares it with the plan.
# Each drift becomes a ::warning annotation and the job summary gets one line; the step fails
# on drift (exit 2) and on error (exit 1), so a scheduled run shows red before a key rolls.
set -euo pipefail
# shellcheck source=action/lib.sh
source "$(dirname "$0")/lib.sh"

case "${KEYROLL_DB:-}" in
  "") exit 0 ;;
  check) ;;
  *)
    echo "::error title=keyroll::the db input takes \"check\" or nothing" >&2
    exit 1
    ;;
esac
split_words "${KEYROLL_DB_ARGS:-}"
extra=(${words[@]+"${words[@]}"})
status=0
out=$("$keyroll" db check --config "$config" ${rules_args[@]+"${rules_args[@]}"} \
  ${extra[@]+"${extra[@]}"}) || status=$?
# keyroll's lines are already free of line breaks and never start with `::`; a workflow
# command's message still needs `%` and CR escaped as the runner reads them.
escape() {
  local text=${1//%/%25}
  text=${text//$'\r'/%0D}
  printf '%s' "$text"
}
drift=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  printf '%s\n' "$line"
  if [ "$status" = 2 ]; then
    drift=$((drift + 1))
    echo "::warning title=keyroll database drift::$(escape "$line")"
  fi
done <<<"$out"
summary=${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set}
case "$status" in
  0) echo "keyroll db check: every table in step with its issuers' metadata." >>"$summary" ;;
  2) echo "keyroll db check: **$drift drift(s)**, see the annotations; the pull requests carry the migrations, or run \`keyroll db apply\` behind a review gate." >>"$summary" ;;
  *) echo "keyroll db check: **failed** (exit $status), see the log." >>"$summary" ;;
esac
exit "$status"
