#!/usr/bin/env bash
# The action's pr step: `keyroll pr`, which writes the step outputs and the job summary
# itself. The credentials go to keyroll through the environment only (never argv, which
# other processes can read).
set -euo pipefail
# shellcheck source=action/lib.sh
source "$(dirname "$0")/lib.sh"

args=(pr --config "$config" --write-outputs "${GITHUB_OUTPUT:?}" --write-summary "${GITHUB_STEP_SUMMARY:?}")
args+=(${rules_args[@]+"${rules_args[@]}"})
if [ "${KEYROLL_DRY_RUN:-false}" = true ]; then
  args+=(--dry-run)
fi
# Only what the inputs say: credentials the job's environment happens to hold are dropped.
unset GITHUB_TOKEN KEYROLL_APP_ID KEYROLL_APP_PRIVATE_KEY
if [ -n "${KEYROLL_APP_ID_INPUT:-}" ] || [ -n "${KEYROLL_APP_PRIVATE_KEY_INPUT:-}" ]; then
  if [ -z "${KEYROLL_APP_ID_INPUT:-}" ] || [ -z "${KEYROLL_APP_PRIVATE_KEY_INPUT:-}" ]; then
    echo "::error::keyroll: app-id and app-private-key go together; one of them is empty"
    exit 1
  fi
  export KEYROLL_APP_ID="$KEYROLL_APP_ID_INPUT"
  export KEYROLL_APP_PRIVATE_KEY="$KEYROLL_APP_PRIVATE_KEY_INPUT"
elif [ -n "${KEYROLL_TOKEN:-}" ]; then
  export GITHUB_TOKEN="$KEYROLL_TOKEN"
fi
unset KEYROLL_TOKEN KEYROLL_APP_ID_INPUT KEYROLL_APP_PRIVATE_KEY_INPUT
split_words "${KEYROLL_PR_ARGS:-} ${KEYROLL_ARGS:-}"
"$keyroll" "${args[@]}" ${words[@]+"${words[@]}"}
