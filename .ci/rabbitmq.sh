#!/usr/bin/env bash
# Makes rabbitmq-server available to the drivers/rabbitmq tests, which start
# their own private nodes (loopback only, private ports and epmd, data in a
# temporary directory). Installs the Debian package when it is missing, then
# stops and disables the system's RabbitMQ service and the Erlang port
# mapper units the packages may have started, so that only spate's nodes run.
# Safe to run more than once. Needs root or sudo, and apt-get.
set -euo pipefail

server=/usr/lib/rabbitmq/bin/rabbitmq-server

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ! -x "$server" ]; then
	if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
		echo ".ci/rabbitmq.sh: rabbitmq-server is missing and installing it needs root or sudo" >&2
		exit 1
	fi
	echo ".ci/rabbitmq.sh: installing rabbitmq-server"
	# Keep the package from starting the system service while installing
	# (policy-rc.d is what invoke-rc.d and deb-systemd-invoke consult);
	# an existing policy is left as it is.
	policy=/usr/sbin/policy-rc.d
	made_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
		as_root chmod 755 "$policy"
		made_policy=1
	fi
	trap 'if [ -n "$made_policy" ]; then as_root rm -f "$policy"; fi' EXIT
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server
fi

# Stop and disable the system node and epmd, wherever they came from.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	for unit in rabbitmq-server.service epmd.service epmd.socket; do
		# Only when there is something to do: run again, this asks nobody for a password.
		if systemctl is-active --quiet "$unit" 2>/dev/null || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
			as_root systemctl disable --now "$unit" >/dev/null 2>&1 || true
		fi
	done
elif [ -x /etc/init.d/rabbitmq-server ]; then
	# Only when a system node runs: the init script's stop runs rabbitmqctl,
	# which would start a system epmd on 0.0.0.0:4369 if none were running.
	pidfile=/var/run/rabbitmq/pid
	if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		as_root /etc/init.d/rabbitmq-server stop >/dev/null 2>&1 || true
		# and the system epmd that node started (refused while nodes use it)
		epmd -kill >/dev/null 2>&1 || true
	fi
	if compgen -G '/etc/rc[2-5].d/S*rabbitmq-server' >/dev/null; then # enabled at boot
		as_root update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true
	fi
fi

test -x "$server" || { echo ".ci/rabbitmq.sh: $server is missing after the install" >&2; exit 1; }
echo ".ci/rabbitmq.sh: rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo '?') is installed; the system service is not running"
