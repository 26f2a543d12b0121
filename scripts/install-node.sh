#!/usr/bin/env bash
# Installs a Colony node on this device (a Raspberry Pi, a Jetson, a laptop) as the systemd service
# colony-node: the package, user `colony`, /var/lib/colony, the device profile, the node credential
# and the unit. docs/install.md explains each step.
#
#   sudo scripts/install-node.sh --credentials pi-kitchen.json [--package colony-0.1.0.tgz]
#        [--node-id ID] [--coordinator mqtt://HOST:1883] [--profile NAME] [--dry-run]
#   sudo scripts/install-node.sh --uninstall [--purge] [--dry-run]
#
# --credentials FILE  the node credential from `colony credentials issue --node ID --out FILE` on the
#                     coordinator host; copied to /etc/colony/node.json (root, 0600). Required.
# --package SPEC      what `npm install -g` installs: a tarball from `npm pack`, a folder, or a
#                     registry name (default: colony).
# --node-id ID        this node's id; must be the credential's (default: the credential's node name).
# --coordinator URL   the broker (default: the credential's url, else found by mDNS).
# --profile NAME      device profile (default: `colony profile detect`, pinned in /etc/colony/node.env).
# --dry-run           print every step, do nothing.
# --uninstall         stop, disable and remove the service (and the package if no other Colony
#                     service uses it); keeps /etc/colony and /var/lib/colony unless --purge.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/install-common.sh"

CREDENTIALS=""
NODE_ID=""
COORDINATOR=""
PROFILE=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --credentials) CREDENTIALS=${2:?--credentials needs a file}; shift 2 ;;
    --package) PACKAGE=${2:?--package needs a value}; shift 2 ;;
    --node-id) NODE_ID=${2:?--node-id needs a value}; shift 2 ;;
    --coordinator) COORDINATOR=${2:?--coordinator needs a URL}; shift 2 ;;
    --profile) PROFILE=${2:?--profile needs a name}; shift 2 ;;
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
  uninstall_unit colony-node node.json node.env
  exit 0
fi

[ -n "$CREDENTIALS" ] || die "--credentials FILE is required (on the coordinator host: colony credentials issue --node ID --out FILE)"
[ -f "$CREDENTIALS" ] || die "no such credentials file: $CREDENTIALS"
require_cmd node "install Node.js 20 or newer (https://nodejs.org, or your distribution's nodejs 20+)"
# The credential names its node (username node.ID): the node id must be that ID, or the broker refuses it.
CRED_NODE="$(node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const u = String(c.username ?? ""); process.stdout.write(u.startsWith("node.") ? u.slice(5) : "")' "$CREDENTIALS")" \
  || die "$CREDENTIALS is not a credentials JSON file"
[ -n "$CRED_NODE" ] || die "$CREDENTIALS is not a node credential (its username must be node.ID; colony credentials issue --node ID --out FILE)"
[ -z "$NODE_ID" ] || [ "$NODE_ID" = "$CRED_NODE" ] || die "--node-id $NODE_ID does not match the credential's node $CRED_NODE"
NODE_ID=$CRED_NODE
case "$NODE_ID" in *[!A-Za-z0-9._:-]*) die "node id: only [A-Za-z0-9._:-]" ;; esac

say "# 1. the colony package"
install_package
say "# 2. user $COLONY_USER and folders"
create_user
say "# 3. device profile"
if [ -z "$PROFILE" ]; then
  if command -v colony >/dev/null 2>&1; then
    show colony profile detect
    PROFILE="$(colony profile detect 2>/dev/null)" || die "colony profile detect failed; pass --profile NAME (colony profile list)"
    say "# detected: $PROFILE"
  else
    show colony profile detect
    PROFILE="DETECTED"
    say "# (colony is not installed yet: the real run detects the profile here)"
  fi
fi
case "$PROFILE" in *[!A-Za-z0-9._/-]*) die "--profile: a profile name or file path" ;; esac
say "# 4. node credential (root only; the service gets it through LoadCredential=)"
put 0600 root:root "$COLONY_ETC/node.json" secret <"$CREDENTIALS"
say "# 5. settings"
{
  printf '# Colony node settings (docs/node.md); read by systemd for colony-node.service.\n'
  printf 'COLONY_PROFILE=%s\n' "$PROFILE"
  printf 'COLONY_NODE_ID=%s\n' "$NODE_ID"
  [ -z "$COORDINATOR" ] || printf 'COLONY_COORDINATOR=%s\n' "$COORDINATOR"
} | put 0600 root:root "$COLONY_ETC/node.env"
say "# 6. the systemd unit"
install_unit colony-node
say "# done: journalctl -u colony-node -f shows its log; systemctl status colony-node its state"
