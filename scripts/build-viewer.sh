#!/usr/bin/env bash
# Build the web viewer (viewer/ → viewer/dist, served by the server at /viewer). Needs Node.js ≥ 20 and npm
# (system-deps.sh installs them when missing). npm ci reuses node_modules while package-lock.json is unchanged.
set -euo pipefail
cd "$(dirname "$0")/../viewer"
if ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing Debian packages: nodejs npm"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
echo "viewer built: viewer/dist"
