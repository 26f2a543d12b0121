#!/usr/bin/env bash
# Installs the Colony coordinator on a LAN host as the systemd service colony-coordinator: the
# package, user `colony`, /var/lib/colony (task store, fleet secret), its settings and the unit.
# docs/install.md explains each step.
#
#   sudo scripts/install-coordinator.sh [--package colony-0.1.0.tgz] [--host 0.0.0.0] [--port 1883]
#        [--no-mdns] [--trusted-submitters a,b] [--env-file FILE] [--dry-run]
#   sudo scripts/install-coordinator.sh --uninstall [--purge] [--dry-run]
#
# --package SPEC      what `npm install -g` installs: a tarball from `npm pack`, a folder, or a
#                     registry name (default: colony).
# --host ADDR         address the broker listens on (default 0.0.0.0: the LAN).
# --port N            MQTT port (default 1883).
# --no-mdns           do not advertise the coordinator by mDNS (nodes then need --coordinator).
# --trusted-submitters LIST  submitters whose verdicts count in full (docs/scoring.md).
# --env-file FILE     more COLONY_* settings, e.g. an external broker's COLONY_BROKER_PASSWORD:
#                     appended to /etc/colony/coordinator.env (root, 0600), never on a command line.
# --dry-run           print every step, do nothing.
# --uninstall         stop, disable and remove the service (and the package if no other Colony
#                     service uses it); keeps /etc/colony and /var/lib/colony unless --purge.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/install-common.sh"

HOST=0.0.0.0
PORT=1883
MDNS=1
TRUSTED=""
ENV_FILE=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --package) PACKAGE=${2:?--package needs a value}; shift 2 ;;
    --host) HOST=${2:?--host needs an address}; shift 2 ;;
    --port) PORT=${2:?--port needs a number}; shift 2 ;;
    --no-mdns) MDNS=0; shift ;;
    --trusted-submitters) TRUSTED=${2:?--trusted-submitters needs a list}; shift 2 ;;
    --env-file) ENV_FILE=${2:?--env-file needs a file}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) usage 0 ;;
    *) printf 'unknown option: %s\n' "$1" >&2; usage 2 >&2 ;;
  esac
done
[ "$DRY_RUN" = 1 ] && say "# dry run: printing the steps, changing nothing"
require_root

if [ "$UNINSTALL" = 1 ]; then
  uninstall_unit colony-coordinator coordinator.env
  exit 0
fi

case "$PORT" in '' | *[!0-9]*) die "--port: a number" ;; esac
case "$HOST" in *[!A-Za-z0-9.:_-]*) die "--host: an address" ;; esac
case "$TRUSTED" in *[!A-Za-z0-9.,_:-]*) die "--trusted-submitters: comma-separated names" ;; esac
[ -z "$ENV_FILE" ] || [ -f "$ENV_FILE" ] || die "no such file: $ENV_FILE"

say "# 1. the colony package"
install_package
say "# 2. user $COLONY_USER and folders (the fleet secret is created in $COLONY_STATE at first start, 0600)"
create_user
say "# 3. settings (root only; may hold a broker password)"
{
  printf '# Colony coordinator settings (docs/coordinator.md); read by systemd for colony-coordinator.service.\n'
  printf 'COLONY_HOST=%s\n' "$HOST"
  printf 'COLONY_PORT=%s\n' "$PORT"
  printf 'COLONY_MDNS=%s\n' "$MDNS"
  [ -z "$TRUSTED" ] || printf 'COLONY_TRUSTED_SUBMITTERS=%s\n' "$TRUSTED"
  [ -z "$ENV_FILE" ] || cat "$ENV_FILE"
} | put 0600 root:root "$COLONY_ETC/coordinator.env" ${ENV_FILE:+secret}
say "# 4. the systemd unit"
install_unit colony-coordinator
say "# done: journalctl -u colony-coordinator -f shows its log. Issue a node's credential with:"
say "#   sudo -u $COLONY_USER $(colony_bin) credentials issue --data-dir $COLONY_STATE --node NAME --out NAME.json"
