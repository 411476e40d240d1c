#!/usr/bin/env bash
# Usage: tests/peers/install.sh
#
# Installs the real LMTP peers used by the integration tests (Postfix as the
# LMTP client, Dovecot and Cyrus as LMTP servers, socat, swaks, python3) from
# Debian's packages. Needs root. Non-interactive and idempotent: it refreshes
# the package lists only when they are missing or older than a day, and waits
# for another apt/dpkg process to release its lock instead of failing.
set -euo pipefail

packages=(postfix dovecot-core dovecot-lmtpd cyrus-imapd cyrus-common socat swaks python3 curl)
lock_wait=600

export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: must run as root" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install.sh: all packages already installed"
  exit 0
fi

# Refresh the lists only when none is younger than a day.
lists=/var/lib/apt/lists
if [ -z "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]; then
  apt-get -o DPkg::Lock::Timeout="$lock_wait" update </dev/null
fi

apt-get -o DPkg::Lock::Timeout="$lock_wait" install -y \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" </dev/null
