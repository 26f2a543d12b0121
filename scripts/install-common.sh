# Shared by scripts/install-node.sh and scripts/install-coordinator.sh (sourced, not run).
# Every step goes through `step` (a command) or `put` (a file): with --dry-run they print what they
# would do, prefixed with "+ ", and do nothing. docs/install.md describes what they install.

COLONY_USER=colony
COLONY_ETC=/etc/colony
COLONY_STATE=/var/lib/colony
SYSTEMD_DIR=${COLONY_SYSTEMD_DIR:-/etc/systemd/system}
# Tests only: files are written under this folder instead of / (test/integration/install-scripts.test.ts).
ROOT=${COLONY_INSTALL_ROOT:-}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DRY_RUN=0
UNINSTALL=0
PURGE=0
PACKAGE=""

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

# Prints a command quoted as a shell would read it.
show() {
  local out="+" a
  for a in "$@"; do out+=" $(printf '%q' "$a")"; done
  printf '%s\n' "$out"
}

# Runs a command, or prints it with --dry-run.
step() {
  show "$@"
  [ "$DRY_RUN" = 1 ] || "$@"
}

# put MODE OWNER:GROUP PATH [SECRET]: writes stdin to PATH with that mode and owner. With --dry-run
# prints the content, unless SECRET is set (a credential's content is never printed).
put() {
  local mode=$1 owner=$2 dest=$3 secret=${4:-}
  local content
  content="$(cat)"
  say "+ write $dest (mode $mode, owner $owner)"
  if [ "$DRY_RUN" = 1 ]; then
    if [ -z "$secret" ]; then printf '%s\n' "$content" | sed 's/^/    | /'; else say "    | (credential, not shown)"; fi
    return 0
  fi
  # Written next to its place with its final mode first, then renamed: never readable by others, never half-written.
  local tmp
  tmp="$(mktemp "$ROOT$(dirname "$dest")/.colony-XXXXXX")"
  chmod "$mode" "$tmp"
  printf '%s\n' "$content" >"$tmp"
  chown "$owner" "$tmp"
  mv -f "$tmp" "$ROOT$dest"
}

require_root() {
  [ "$DRY_RUN" = 1 ] || [ -n "$ROOT" ] && return 0
  [ "$(id -u)" = 0 ] || die "run as root (sudo $0 ...), or add --dry-run to see the steps"
}

require_cmd() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$DRY_RUN" = 1 ] && { say "# note: $1 is not installed here; $2"; return 0; }
  die "$1 is not installed: $2"
}

# Installs the colony package globally: a tarball from `npm pack`, a folder, or a registry name.
install_package() {
  require_cmd node "install Node.js 20 or newer (https://nodejs.org, or your distribution's nodejs 20+)"
  require_cmd npm "install npm with Node.js"
  if [ -n "$PACKAGE" ] && [ -e "$PACKAGE" ]; then PACKAGE="$(cd "$(dirname "$PACKAGE")" && pwd)/$(basename "$PACKAGE")"; fi
  step npm install --global --no-audit --no-fund "${PACKAGE:-colony}"
}

# The installed `colony` command (for the unit's ExecStart=) and the package folder.
colony_bin() {
  local bin
  bin="$(command -v colony 2>/dev/null || true)"
  if [ -z "$bin" ] && command -v npm >/dev/null 2>&1; then bin="$(npm prefix --global 2>/dev/null)/bin/colony"; fi
  printf '%s\n' "${bin:-/usr/local/bin/colony}"
}
colony_root() {
  local root=""
  if command -v npm >/dev/null 2>&1; then root="$(npm root --global 2>/dev/null)/colony"; fi
  printf '%s\n' "${root:-/usr/local/lib/node_modules/colony}"
}

create_user() {
  if id "$COLONY_USER" >/dev/null 2>&1; then
    say "# user $COLONY_USER exists"
  else
    step useradd --system --user-group --home-dir "$COLONY_STATE" --no-create-home --shell /usr/sbin/nologin "$COLONY_USER"
  fi
  step install -d -m 0755 -o root -g root "$COLONY_ETC"
  step install -d -m 0700 -o "$COLONY_USER" -g "$COLONY_USER" "$COLONY_STATE"
}

# install_unit NAME: the unit from scripts/systemd/ with the installed command's path, then enable + start.
install_unit() {
  local name=$1 bin root
  bin="$(colony_bin)"
  root="$(colony_root)"
  [ -f "$HERE/systemd/$name.service" ] || die "missing $HERE/systemd/$name.service"
  sed -e "s#@COLONY_BIN@#$bin#g" -e "s#@COLONY_ROOT@#$root#g" "$HERE/systemd/$name.service" | put 0644 root:root "$SYSTEMD_DIR/$name.service"
  if command -v systemd-analyze >/dev/null 2>&1 && [ "$DRY_RUN" = 0 ]; then step systemd-analyze verify "$ROOT$SYSTEMD_DIR/$name.service"; fi
  step systemctl daemon-reload
  step systemctl enable --now "$name.service"
}

# uninstall_unit NAME [ETC FILES...]: stops, disables and removes the unit; --purge also removes the
# files under /etc/colony it installed and, when no other Colony unit is left, the data and the user.
uninstall_unit() {
  local name=$1
  shift
  step systemctl disable --now "$name.service"
  step rm -f "$SYSTEMD_DIR/$name.service"
  step systemctl daemon-reload
  local other
  other=$(ls "$ROOT$SYSTEMD_DIR"/colony-*.service 2>/dev/null | grep -v "/$name.service$" || true)
  if [ -z "$other" ]; then
    step npm uninstall --global colony
  else
    say "# keeping the colony package: $other still uses it"
  fi
  if [ "$PURGE" = 1 ]; then
    local f
    for f in "$@"; do step rm -f "$COLONY_ETC/$f"; done
    if [ -z "$other" ]; then
      step rm -rf "$COLONY_STATE" /var/cache/colony
      step userdel "$COLONY_USER"
    else
      say "# keeping $COLONY_STATE and user $COLONY_USER: $other still uses them"
    fi
  else
    say "# kept: $COLONY_ETC (settings, credentials) and $COLONY_STATE (data); --purge removes them"
  fi
}
