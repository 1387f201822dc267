#!/usr/bin/env bash
# Removes the millstream service and application. Keeps the config
# (/etc/millstream) and the data (/var/lib/millstream) unless --purge.
#
#   sudo systemd/uninstall.sh [--purge] [--root DIR] [--prefix DIR] [--no-systemctl]
set -euo pipefail
ROOT=/
PREFIX=/opt/millstream
PURGE=0
SYSTEMCTL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --purge) PURGE=1; shift ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
ROOT="${ROOT%/}"
if [ "$ROOT" = "" ] && [ "$SYSTEMCTL" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl disable --now millstream.service 2>/dev/null || true
fi
rm -f "$ROOT/etc/systemd/system/millstream.service"
[ "$ROOT" = "" ] && [ "$SYSTEMCTL" = 1 ] && [ -d /run/systemd/system ] && systemctl daemon-reload
rm -rf "${ROOT}${PREFIX:?}"
if [ "$PURGE" = 1 ]; then
  rm -rf "$ROOT/etc/millstream" "$ROOT/var/lib/millstream"
  [ "$ROOT" = "" ] && id millstream >/dev/null 2>&1 && userdel millstream
  echo "uninstall.sh: removed application, unit, config and data"
else
  echo "uninstall.sh: removed application and unit; kept $ROOT/etc/millstream and $ROOT/var/lib/millstream (use --purge to remove)"
fi
