#!/usr/bin/env bash
# The action's run step: annotations for the configs' findings, then `keyroll pr`, which
# writes the step outputs and the job summary itself. Inputs arrive as environment
# variables (never interpolated into this script).
set -euo pipefail
config=${KEYROLL_CONFIG:-keyroll.toml}

# Findings as ::error/::warning annotations on the files. Exit 1 (error-level findings)
# must not stop the job: keyroll pr repairs what it can and says what it cannot.
status=0
keyroll scan --format github "$(dirname "$config")" || status=$?
if [ "$status" -gt 1 ]; then
  exit "$status"
fi

args=(pr --config "$config" --write-outputs "${GITHUB_OUTPUT:?}" --write-summary "${GITHUB_STEP_SUMMARY:?}")
if [ "${KEYROLL_DRY_RUN:-false}" = true ]; then
  args+=(--dry-run)
fi
if [ -n "${KEYROLL_APP_ID_INPUT:-}" ]; then
  export KEYROLL_APP_ID="$KEYROLL_APP_ID_INPUT"
  export KEYROLL_APP_PRIVATE_KEY="${KEYROLL_APP_PRIVATE_KEY_INPUT:?app-private-key is required with app-id}"
  unset GITHUB_TOKEN
elif [ -n "${KEYROLL_TOKEN:-}" ]; then
  export GITHUB_TOKEN="$KEYROLL_TOKEN"
fi
read -r -a extra <<< "${KEYROLL_ARGS:-}"
keyroll "${args[@]}" ${extra[@]+"${extra[@]}"}
