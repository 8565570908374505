#!/usr/bin/env bash
# Debian packages the test suite and benchmarks need (real peers: dcmtk, Orthanc), and the
# services they talk to (PostgreSQL). Idempotent; installs only what is missing.
set -euo pipefail
need=()
command -v storescu >/dev/null || need+=(dcmtk)
command -v Orthanc >/dev/null || need+=(orthanc orthanc-dicomweb orthanc-gdcm orthanc-postgresql)
command -v 7z >/dev/null || need+=(p7zip-full)
command -v psql >/dev/null || need+=(postgresql postgresql-client)
command -v chromium >/dev/null || need+=(chromium)  # browser tests (Playwright drives /usr/bin/chromium)
command -v npm >/dev/null || need+=(nodejs npm)  # builds the web viewer (Vite)
[ -n "$(fc-list :lang=zh 2>/dev/null)" ] || need+=(fonts-wqy-microhei)  # Chinese glyphs in the browser
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# PostgreSQL must answer on 127.0.0.1:5432 (CI and developer machines run it; start it if stopped).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
