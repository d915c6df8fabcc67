#!/usr/bin/env bash
# Set up everything (scripts/setup.sh) and run ConvScope's main job on the bundled demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/convscope demo "$@"
