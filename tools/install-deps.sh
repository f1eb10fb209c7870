#!/usr/bin/env bash
# Installs the Debian 12 packages neocloud needs to build, test and run.
# One script for `make run`, `make test` and `.ci/run`. Installs only what is missing.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev libsqlite3-dev libpq-dev postgresql libutf8proc-dev zlib1g-dev libboost-dev
  clang libclang-rt-14-dev
  python3 python3-jinja2 time
  slurm-wlm munge
  bubblewrap util-linux procps
  podman busybox-static
  python3-torch libopenblas0-pthread
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from NodeSource (which bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
