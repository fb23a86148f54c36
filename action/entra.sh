#!/usr/bin/env bash
# The action's Entra ID step (input `entra: check`): `keyroll entra check` for every
# [[federated_domain]] of keyroll.toml, after the pull requests. A next key Entra ID does not
# hold yet is a warning annotation; a lockout or an error is an error annotation and fails
# the job. Either way one line goes to the job summary. The credential is the job's OIDC
# token (`permissions: id-token: write`) or a KEYROLL_ENTRA_* secret in the step's env.
set -euo pipefail
# shellcheck source=action/lib.sh
source "$(dirname "$0")/lib.sh"

case "${KEYROLL_ENTRA:-}" in
  "" | "false" | "off") exit 0 ;;
  "check") ;;
  *)
    echo "::error::the entra input is \"${KEYROLL_ENTRA}\"; it takes check (entra apply belongs in a job bound to an environment with required reviewers)"
    exit 1
    ;;
esac

split_words "${KEYROLL_ENTRA_ARGS:-}"
extra=(${words[@]+"${words[@]}"})
status=0
report=$("$keyroll" entra check --config "$config" ${rules_args[@]+"${rules_args[@]}"} \
  ${extra[@]+"${extra[@]}"}) || status=$?
printf '%s\n' "$report"
# The report's verdict lines (keyroll escaped their outside text; none starts with `::`).
verdicts=$(printf '%s\n' "$report" | awk '
  /^federated domain / { domain = $3; next }
  /^  (AD FS |Entra ID  |Entra ID.s own update)/ { next }
  /^  / { sub(/^  /, ""); print domain ": " $0 }')
case "$status" in
  0) line="keyroll entra check: Entra ID holds the AD FS keys of every federated domain" ;;
  2)
    line="keyroll entra check: a next key is missing in Entra ID: $(printf '%s' "$verdicts" | tr '\n' ' ')"
    echo "::warning title=keyroll entra::${line//$'\n'/ }"
    ;;
  *)
    line="keyroll entra check failed: $(printf '%s' "$verdicts" | tr '\n' ' ')"
    echo "::error title=keyroll entra::${line//$'\n'/ }"
    ;;
esac
case "$status" in 0) state=in-step ;; 2) state=next-missing ;; *) state=error ;; esac
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  printf 'state=%s\n' "$state" >>"$GITHUB_OUTPUT"
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  printf '%s\n' "$line" >>"$GITHUB_STEP_SUMMARY"
fi
if [ "$status" -eq 1 ]; then
  exit 1
fi
