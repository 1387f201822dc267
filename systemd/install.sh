#!/usr/bin/env bash
# Installs millstream as a systemd service. Idempotent: run it again to
# upgrade the application; an existing config, rules or schemas are never
# overwritten (new examples land beside them as *.example).
#
#   sudo systemd/install.sh                 # install, enable and start
#   systemd/install.sh --root /tmp/r --no-deps --no-systemctl   # lay out files only (tests, packaging)
#
# Options:
#   --root DIR       install under DIR instead of / (no user is created, systemctl is not run)
#   --prefix DIR     application folder (default /opt/millstream)
#   --no-deps        do not run `npm ci --omit=dev` in the application folder
#   --no-systemctl   do not reload, enable or start the unit
set -euo pipefail

ROOT=/
PREFIX=/opt/millstream
DEPS=1
SYSTEMCTL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --no-deps) DEPS=0; shift ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

SRC="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${ROOT%/}"
APP="$ROOT$PREFIX"
ETC="$ROOT/etc/millstream"
UNIT_DIR="$ROOT/etc/systemd/system"
log() { printf 'install.sh: %s\n' "$*"; }

command -v node >/dev/null || { echo "install.sh: node (>= 20) is required" >&2; exit 1; }

# 1. The application: copy the sources (no tests, no benchmarks) and, when
#    built (npm run build), the compiled dist/; then production dependencies.
#    dist/ runs only while no source is newer than dist/.built (bin/entry.js),
#    so the stamp is touched after the copy.
mkdir -p "$APP"
for item in package.json package-lock.json README.md bin agent log-store rules firmware-bridge systemd docs dist; do
  [ -e "$SRC/$item" ] || continue
  rm -rf "${APP:?}/$item.new"
  cp -R "$SRC/$item" "$APP/$item.new"
  find "$APP/$item.new" -name '*.test.ts' -delete 2>/dev/null || true
  rm -rf "${APP:?}/$item"
  mv "$APP/$item.new" "$APP/$item"
done
rm -rf "${APP:?}/dist/test" "${APP:?}/dist/bench"
if [ -e "$APP/dist/.built" ]; then touch "$APP/dist/.built"; else rm -rf "${APP:?}/dist"; fi
log "application in $APP"
if [ "$DEPS" = 1 ]; then
  (cd "$APP" && npm ci --omit=dev --no-audit --no-fund)
  log "production dependencies installed"
fi

# 2. Config, rules and schemas: examples only where nothing exists yet.
mkdir -p "$ETC/rules" "$ETC/schemas"
place() { # place SRC DEST: copy unless DEST exists, else drop SRC beside it as DEST.example
  if [ -e "$2" ]; then
    if ! cmp -s "$1" "$2"; then cp "$1" "$2.example"; log "kept $2 (new example: $2.example)"; fi
  else
    cp "$1" "$2"; log "wrote $2"
  fi
}
place "$SRC/systemd/millstream.example.yaml" "$ETC/millstream.yaml"
for f in "$SRC"/systemd/rules/*.sql; do place "$f" "$ETC/rules/$(basename "$f")"; done
for f in "$SRC"/systemd/schemas/*.json; do place "$f" "$ETC/schemas/$(basename "$f")"; done

# 3. The unit (always the shipped one; local changes belong in a drop-in: systemctl edit millstream).
mkdir -p "$UNIT_DIR"
sed "s#/opt/millstream#$PREFIX#g" "$SRC/systemd/millstream.service" > "$UNIT_DIR/millstream.service.new"
mv "$UNIT_DIR/millstream.service.new" "$UNIT_DIR/millstream.service"
log "unit in $UNIT_DIR/millstream.service"

# 4. The user (in group dialout for serial ports), only on a real root.
if [ "$ROOT" = "" ]; then
  if ! id millstream >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/millstream --no-create-home --shell /usr/sbin/nologin --user-group millstream
    log "created user millstream"
  fi
  getent group dialout >/dev/null && usermod -a -G dialout millstream
  chgrp -R millstream "$ETC" && chmod -R g+rX "$ETC"
fi

# 5. Enable and (re)start.
if [ "$ROOT" = "" ] && [ "$SYSTEMCTL" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable millstream.service
  systemctl restart millstream.service
  log "millstream.service enabled and started; status: systemctl status millstream"
else
  log "systemctl not run (root $ROOT${SYSTEMCTL:+, systemctl=$SYSTEMCTL}); enable with: systemctl enable --now millstream"
fi
