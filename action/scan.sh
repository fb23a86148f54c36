#!/usr/bin/env bash
# The action's scan step: the configs' findings as ::error / ::warning annotations on their
# files and lines. The issuers come from keyroll.toml (`--config`), so certificates near or
# past expiry are annotated too; custom rules (`rules` input) apply as in `pr`.
set -euo pipefail
# shellcheck source=action/lib.sh
source "$(dirname "$0")/lib.sh"

split_words "${KEYROLL_SCAN_ARGS:-}"
extra=(${words[@]+"${words[@]}"})
# Exit 1 (error-level findings) must not stop the job: keyroll pr repairs what it can and
# says what it cannot. Exit 2 (could not run: a broken keyroll.toml or rules) does.
status=0
"$keyroll" scan --format github --config "$config" ${rules_args[@]+"${rules_args[@]}"} \
  ${extra[@]+"${extra[@]}"} || status=$?
if [ "$status" -gt 1 ]; then
  exit "$status"
fi
