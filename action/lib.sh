# Shared by the action's scan and pr steps (sourced, not run). Inputs arrive as environment
# variables, never interpolated into a script.

# The keyroll the install step put in place (its `bin` output); `keyroll` on PATH otherwise.
keyroll=${KEYROLL_BIN:-keyroll}

# keyroll.toml's path as given, with `\` turned into `/`: Windows users write
# `deploy\keyroll.toml`, which Git Bash and keyroll on Windows read either way, while on a
# Linux runner a `\` would be part of a file name (which nobody means in this input).
config=${KEYROLL_CONFIG:-keyroll.toml}
config=${config//\\//}

# `--rules DIR` when the rules input is set (same separators rule).
rules_args=()
if [ -n "${KEYROLL_RULES:-}" ]; then
  rules_args=(--rules "${KEYROLL_RULES//\\//}")
fi

# Splits an args input into words at spaces, tabs and line breaks (a YAML block scalar may
# span lines) into the array `words`. No quoting and no globbing: an argument cannot hold a
# space. (No nameref: macOS's /bin/bash is 3.2.)
split_words() {
  words=()
  if [ -n "$1" ]; then
    IFS=$' \t\r\n' read -r -d '' -a words <<<"$1" || true
  fi
}
