#!/usr/bin/env bash
# Install what autotosis needs, idempotently: ffmpeg (apt) and a .venv with pinned deps.
# Usage: scripts/setup.sh [extra]   e.g. scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi dejavu; then
  echo "setup: installing ffmpeg and a font for the overlay text (apt-get)"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends ffmpeg fonts-dejavu-core fontconfig >/dev/null
fi

# The tests load the HTML report and the review page in a real headless browser: Debian's chromium
# (driven over the DevTools protocol by tests/cdp.py: no chromedriver needed).
case ",${extra}," in
  *,test,*)
    if [ ! -x /usr/bin/chromium ]; then
      echo "setup: installing chromium for the browser tests (apt-get)"
      sudo_cmd=""
      if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
      $sudo_cmd apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
    fi
    ;;
esac

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
  done
fi
"$python_bin" -c 'import sys; assert sys.version_info >= (3, 11), "autotosis needs Python >= 3.11"'

# Re-install only when pyproject.toml (the pins) or the requested extra changed.
stamp=".venv/.autotosis-setup"
want="$(sha256sum pyproject.toml | cut -c1-16) ${extra}"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && grep -qxF "$want" "$stamp"; then
  exit 0
fi
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
target="."
if [ -n "$extra" ]; then target=".[${extra}]"; fi
echo "setup: installing Python packages into .venv (torch is large: a minute or two)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
# Keep both stamps: after `make test`, `make demo` needs no reinstall.
{ cat "$stamp" 2>/dev/null || true; echo "$want"; echo "$(sha256sum pyproject.toml | cut -c1-16) "; } | sort -u > "$stamp.new"
mv "$stamp.new" "$stamp"
