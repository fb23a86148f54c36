#!/usr/bin/env bash
# The action's install step: downloads the keyroll release binary for this runner, checks it
# against the release's SHA256SUMS, puts its folder on GITHUB_PATH (for the job's later
# steps) and writes the executable's path as the step output `bin` (for the action's own
# steps). When the release has no binary for this runner, builds the action's own checkout
# with `cargo install --locked`. A checksum mismatch is an error, never a fallback.
#   KEYROLL_VERSION            release to install (default: this checkout's Cargo.toml version)
#   KEYROLL_ACTION_REPOSITORY  owner/name the action comes from (github.action_repository)
#   KEYROLL_RELEASES_URL       base of the download URLs (default: GitHub releases of that repo)
set -euo pipefail
action_dir=$(cd "$(dirname "$0")/.." && pwd)

version=${KEYROLL_VERSION:-}
if [ -z "$version" ]; then
  version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$action_dir/Cargo.toml" | head -n 1)
fi
version=${version#v}
# It becomes part of URLs and paths.
if ! [[ "$version" =~ ^[0-9A-Za-z][0-9A-Za-z.+-]*$ ]]; then
  echo "::error::keyroll: the version input is not a version such as 0.1.0 (letters, digits, . + -)"
  exit 1
fi

os=${RUNNER_OS:-$(uname -s)}
arch=${RUNNER_ARCH:-$(uname -m)}
exe=""
case "$os" in Windows*) exe=.exe ;; esac
case "$os/$arch" in
  Linux/X64 | Linux/x86_64) target=x86_64-unknown-linux-gnu ext=tar.gz ;;
  Linux/ARM64 | Linux/aarch64) target=aarch64-unknown-linux-gnu ext=tar.gz ;;
  Windows/X64) target=x86_64-pc-windows-msvc ext=zip ;;
  macOS/ARM64 | Darwin/arm64) target=aarch64-apple-darwin ext=tar.gz ;;
  *) target="" ext="" ;;
esac

dest="${RUNNER_TEMP:-$(mktemp -d)}/keyroll-$version"
mkdir -p "$dest"
if [ -n "${KEYROLL_RELEASES_URL:-}" ]; then
  base="$KEYROLL_RELEASES_URL/v$version"
else
  base="${GITHUB_SERVER_URL:-https://github.com}/${KEYROLL_ACTION_REPOSITORY:?which repository is the action from?}/releases/download/v$version"
fi

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d ' ' -f 1; else shasum -a 256 "$1" | cut -d ' ' -f 1; fi
}

bin_dir=""
if [ -n "$target" ]; then
  archive="keyroll-$target.$ext"
  if curl -fsSL --retry 3 -o "$dest/$archive" "$base/$archive" \
    && curl -fsSL --retry 3 -o "$dest/SHA256SUMS" "$base/SHA256SUMS"; then
    want=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$dest/SHA256SUMS")
    got=$(sha256 "$dest/$archive")
    if [ -z "$want" ] || [ "$want" != "$got" ]; then
      echo "::error::keyroll $version: $archive has SHA-256 $got, SHA256SUMS says ${want:-nothing}; refusing to install it"
      exit 1
    fi
    if [ "$ext" = zip ]; then
      # Windows runners: Git Bash may lack unzip; 7-Zip and PowerShell are always there.
      if command -v unzip >/dev/null; then
        unzip -q -o "$dest/$archive" -d "$dest/bin"
      elif command -v 7z >/dev/null; then
        7z x -y -o"$dest/bin" "$dest/$archive" >/dev/null
      else
        pwsh -NoProfile -Command "Expand-Archive -Force -Path '$dest/$archive' -DestinationPath '$dest/bin'"
      fi
    else
      mkdir -p "$dest/bin" && tar -xzf "$dest/$archive" -C "$dest/bin"
    fi
    bin_dir="$dest/bin"
    echo "keyroll $version: $archive verified (SHA-256 $got)"
  else
    echo "keyroll $version: no release binary for $target at $base; building the action's source"
  fi
else
  echo "keyroll: no release binary for $os/$arch; building the action's source"
fi

if [ -z "$bin_dir" ]; then
  cargo install --locked --path "$action_dir" --root "$dest"
  bin_dir="$dest/bin"
fi
"$bin_dir/keyroll$exe" --version
echo "bin=$bin_dir/keyroll$exe" >> "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
# The runner reads GITHUB_PATH as a native path (C:\... on Windows).
if command -v cygpath >/dev/null; then
  bin_dir=$(cygpath -w "$bin_dir")
fi
echo "$bin_dir" >> "${GITHUB_PATH:?GITHUB_PATH is not set}"
