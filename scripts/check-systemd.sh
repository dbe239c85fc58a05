#!/usr/bin/env bash
# scripts/check-systemd.sh (make check-systemd): checks contrib/systemd/ as the
# Debian package installs it, on a machine where anycastd is not installed
# and systemd need not be running (CI, a build container):
#
#  1. the unit's settings that the daemon relies on (Type=notify,
#     RuntimeDirectoryPreserve=yes, KillMode=mixed, the capabilities, ...);
#  2. systemd-analyze verify, in a temporary root that holds the unit, the
#     sysusers.d file and the man pages where the package puts them, anycastd
#     built from this tree, the other programs the unit runs (/bin/kill) and
#     this machine's systemd units (verify needs the targets it orders after);
#  3. the flags of ExecStartPre= and ExecStart= against the built anycastd
#     and examples/anycastd.toml;
#  4. systemd-analyze security --offline: an exposure of at most
#     MAX_EXPOSURE (3.0); the score is printed;
#  5. systemd-sysusers on the sysusers.d file in that root: a locked system
#     user and group without a login shell, named as in User= and Group=.
#
# With --boot (make check-systemd-boot; root), then also:
#
#  6. the unit under a real systemd: the host's OS booted in a container
#     (systemd-nspawn, Debian package systemd-container) on a throw-away
#     overlay of /, with a private network, so nothing reaches this machine's
#     network and nothing is installed on it. The unit, the sysusers.d file
#     and anycastd go in as the package puts them, with a test configuration
#     (a BGP peer that never answers, a VIP on lo, exec, process (unit =
#     dbus.service), listen and tcp checks); then: start (READY=1), STATUS=,
#     the VIP address, anycastctl for a member of group anycastd and not for
#     others, reload, a crash (SIGKILL) restarted with the address journal
#     kept, and stop (drain, withdraw, address removed, exit 0).
#
# Needs Go and systemd's tools (Debian package systemd; scripts/deps.sh
# installs it as root where it is missing). ANYCASTD_BIN: test this anycastd
# instead of building one. With --boot, exec probes that run without a
# cgroup of their own are a finding (REQUIRE_PROBE_CGROUP=0: a note, for a
# kernel without cgroup.kill, before 5.14). Every finding is one line
# "check-systemd.sh: FAIL: ..."; the exit status is 1 if there was any.
set -euo pipefail
cd "$(dirname "$0")/.."

boot=no
case ${1:-} in
'') ;;
--boot) boot=yes ;;
*)
	echo "usage: scripts/check-systemd.sh [--boot]" >&2
	exit 2
	;;
esac

# UNIT and SYSUSERS may name other files, e.g. to see a finding fail.
unit=${UNIT:-contrib/systemd/anycastd.service}
sysusers=${SYSUSERS:-contrib/systemd/anycastd.sysusers}
MAX_EXPOSURE=${MAX_EXPOSURE:-3.0}
GO=${GO:-go}

say() { printf '%s\n' "check-systemd.sh: $*"; }
failures=0
fail() {
	say "FAIL: $*" >&2
	failures=$((failures + 1))
}

scripts/deps.sh systemd
for tool in systemd-analyze systemd-sysusers "$GO"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		say "FAIL: $tool not found (systemd-analyze and systemd-sysusers come with Debian's systemd package)" >&2
		exit 1
	fi
done
say "$(systemd-analyze --version | head -n1)"

tmp=$(mktemp -d)
nspawn_pid='' ovl='' nspawn_run='' init=''
cleanup() {
	if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		# SIGTERM: systemd-nspawn powers the container off.
		kill -TERM "$nspawn_pid" 2>/dev/null || true
		for _ in $(seq 150); do
			kill -0 "$nspawn_pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$nspawn_pid" 2>/dev/null || true
		wait "$nspawn_pid" 2>/dev/null || true
	fi
	# The container's PID 1, should it have outlived systemd-nspawn: killing
	# it ends every process in the container.
	if [ -n "$init" ] && kill -0 "$init" 2>/dev/null; then
		kill -KILL "$init" 2>/dev/null || true
	fi
	if [ -n "$ovl" ]; then
		umount "$ovl/merged" 2>/dev/null || true
		umount "$ovl" 2>/dev/null || true
	fi
	if [ "$nspawn_run" = made ]; then
		# systemd-nspawn's own directories, where /run is no tmpfs.
		rm -rf /run/systemd/nspawn/propagate/anycastd-check-$$
		rmdir /run/systemd/nspawn/propagate /run/systemd/nspawn/locks /run/systemd/nspawn 2>/dev/null || true
	fi
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap "exit 130" INT TERM

# value SECTION KEY: the unit's last assignment of KEY in [SECTION] (systemd
# lets a later assignment override an earlier one for single values).
value() {
	awk -v sect="[$1]" -v key="$2" '
		/^[ \t]*[#;]/ || /^[ \t]*$/ { next }
		/^[ \t]*\[/ { in_sect = ($0 == sect); next }
		in_sect {
			i = index($0, "=")
			if (i == 0) next
			k = substr($0, 1, i - 1); gsub(/[ \t]+$/, "", k)
			if (k != key) next
			v = substr($0, i + 1); gsub(/^[ \t]+|[ \t]+$/, "", v)
			found = 1; val = v
		}
		END { if (found) print val }' "$unit"
}

# want SECTION KEY VALUE WHY: KEY must be VALUE.
want() {
	local got
	got=$(value "$1" "$2")
	if [ "$got" != "$3" ]; then
		fail "$unit: $2=${got:-(unset)}, want $2=$3: $4"
	fi
}

# seconds SPAN: a systemd time span in whole seconds ("90", "90s", "2min",
# "1min 30s"); empty if it cannot tell (e.g. "500ms").
seconds() {
	local total=0 part n unit
	for part in $1; do
		case $part in
		*min) n=${part%min} unit=60 ;;
		*m) n=${part%m} unit=60 ;;
		*sec) n=${part%sec} unit=1 ;;
		*s) n=${part%s} unit=1 ;;
		*) n=$part unit=1 ;;
		esac
		case $n in '' | *[!0-9]*) return 0 ;; esac
		total=$((total + n * unit))
	done
	printf '%s\n' "$total"
}

# want_at_least KEY SECONDS WHY: the [Service] time span KEY is at least
# SECONDS.
want_at_least() {
	local got s
	got=$(value Service "$1")
	s=$(seconds "$got")
	if [ -z "$s" ] || [ "$s" -lt "$2" ]; then
		fail "$unit: $1=${got:-(unset)}, want at least ${2}s: $3"
	fi
}

# words KEY: the [Service] value of KEY as sorted words, one line.
words() { value Service "$1" | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' '; }

# 1. What the daemon relies on.
say "1. the unit's settings"
want Service Type notify "the daemon sends READY=1, STATUS=, WATCHDOG=1, STOPPING=1"
want Service NotifyAccess main "only anycastd itself, not an exec check, may report its state"
# shellcheck disable=SC2016 # $MAINPID is systemd's, literally.
want Service ExecReload '/bin/kill -HUP $MAINPID' "SIGHUP reloads (systemd 252 has no Type=notify-reload)"
want Service Restart on-failure "a crash or the watchdog starts anycastd again; a SIGTERM stop (exit 0) does not"
want Service RestartForceExitStatus 75 "a planned restart (SIGUSR2, anycastctl restart) exits 75 and needs systemd to start anycastd again"
want Service SuccessExitStatus 75 "a planned restart is not a failure"
want Service KillMode mixed "SIGTERM must reach anycastd alone, so that exec checks keep running during the drain"
want Service Delegate yes "exec checks run each probe in a cgroup of their own below the unit's"
want Service RuntimeDirectory anycastd "the journal and the API socket live in /run/anycastd"
want Service RuntimeDirectoryPreserve yes "systemd must not wipe the address-ownership journal at a stop"
want Service RuntimeDirectoryMode 0750 "members of group anycastd reach the API socket; nobody else lists it"
want Service NoNewPrivileges yes "hardening"
want_at_least WatchdogSec 45 "the announcer loop may legitimately block for up to 30 s in a bounded speaker call"
want_at_least TimeoutStopSec 15 "the default drain (5s), the flush (2s) and removing the addresses, before any EXTEND_TIMEOUT_USEC"
caps="CAP_NET_ADMIN CAP_NET_BIND_SERVICE "
[ "$(words AmbientCapabilities)" = "$caps" ] ||
	fail "$unit: AmbientCapabilities=$(value Service AmbientCapabilities), want $caps(netlink; port 179)"
[ "$(words CapabilityBoundingSet)" = "$caps" ] ||
	fail "$unit: CapabilityBoundingSet=$(value Service CapabilityBoundingSet), want $caps(the ambient ones and no more)"
[ "$(words RestrictAddressFamilies)" = "AF_INET AF_INET6 AF_NETLINK AF_UNIX " ] ||
	fail "$unit: RestrictAddressFamilies=$(value Service RestrictAddressFamilies), want AF_UNIX AF_INET AF_INET6 AF_NETLINK (rtnetlink, sock_diag, the API socket, D-Bus)"
case $(value Service ProtectControlGroups) in
yes | true | on | 1) fail "$unit: ProtectControlGroups=yes makes the delegated cgroup read-only on systemd 252: exec checks lose their probe cgroups" ;;
esac
if [ "$(value Service StandardOutput)" = null ]; then
	case $(value Service StandardError) in
	'' | inherit | null) fail "$unit: StandardOutput=null without StandardError=journal loses anycastd's logs (stderr)" ;;
	esac
fi
case $(value Service ProcSubset) in
pid) fail "$unit: ProcSubset=pid hides /proc/sys, which anycastd reads (kernel/random/boot_id for the journal)" ;;
esac
user=$(value Service User)
group=$(value Service Group)

# 2. systemd-analyze verify in a root laid out as the package installs it.
say "2. systemd-analyze verify"
root=$tmp/root
mkdir -p "$root"/usr/bin "$root"/usr/sbin "$root"/usr/lib/systemd/system \
	"$root"/usr/lib/sysusers.d "$root"/usr/share/man "$root"/etc
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
# This machine's units: verify loads every unit anycastd.service depends on
# or orders after (network-online.target, sysinit.target, ...).
for d in /lib/systemd/system /usr/lib/systemd/system; do
	if [ -d "$d" ]; then
		cp -a "$d/." "$root/usr/lib/systemd/system/"
	fi
done
install -m 0644 "$unit" "$root/usr/lib/systemd/system/anycastd.service"
install -m 0644 "$sysusers" "$root/usr/lib/sysusers.d/anycastd.conf"
if [ -n "${ANYCASTD_BIN:-}" ]; then
	install -m 0755 "$ANYCASTD_BIN" "$root/usr/sbin/anycastd"
else
	CGO_ENABLED=0 "$GO" build -o "$root/usr/sbin/anycastd" ./cmd/anycastd
fi
# Every other program the unit runs must exist on this machine (a Debian
# machine like the ones the package is installed on): copy it in.
for key in ExecStartPre ExecStart ExecStartPost ExecReload ExecStop ExecStopPost; do
	prog=$(value Service "$key" | awk '{ print $1 }' | sed 's/^[-@:+!]*//')
	case $prog in
	'' | /usr/sbin/anycastd) ;;
	/*)
		if [ -x "$prog" ]; then
			mkdir -p "$root$(dirname "$(readlink -m "$prog")")"
			cp "$prog" "$root$(readlink -m "$prog")"
		else
			fail "$unit: $key= runs $prog, which this machine does not have"
		fi
		;;
	*) fail "$unit: $key= runs $prog: not an absolute path" ;;
	esac
done
# The man pages Documentation= names, where man(1) can check them.
man_check=no
if command -v man >/dev/null 2>&1; then
	for page in packaging/man/*.[0-9]; do
		[ -f "$page" ] || continue
		mkdir -p "$root/usr/share/man/man${page##*.}"
		cp "$page" "$root/usr/share/man/man${page##*.}/"
	done
	man_check=yes
else
	say "note: no man(1) here (Debian package man-db): Documentation=man:... not checked"
fi
out=$(MANPATH="$root/usr/share/man" SYSTEMD_COLORS=0 systemd-analyze verify \
	--recursive-errors=no --man="$man_check" --root="$root" anycastd.service 2>&1) && rc=0 || rc=$?
if [ -n "$out" ]; then
	printf '%s\n' "$out" | sed 's/^/  /'
fi
if [ "$rc" -ne 0 ] || grep -q 'anycastd' <<<"$out"; then
	fail "systemd-analyze verify found problems in $unit (above)"
else
	say "verify: no findings"
fi

# 3. The command lines, against the built daemon and the example config.
say "3. ExecStartPre= and ExecStart= flags"
# argv KEY: the command line of KEY, with the built binary and the example
# configuration in place of the installed ones.
argv() {
	value Service "$1" | sed -e 's/^[-@:+!]*//' \
		-e "s|^/usr/sbin/anycastd|$root/usr/sbin/anycastd|" \
		-e "s|/etc/anycastd/anycastd.toml|examples/anycastd.toml|g"
}
read -r -a pre <<<"$(argv ExecStartPre)"
read -r -a start <<<"$(argv ExecStart)"
if ! "${pre[@]}" >"$tmp/pre.out" 2>&1; then
	sed 's/^/  /' "$tmp/pre.out"
	fail "$unit: ExecStartPre= fails on examples/anycastd.toml: ${pre[*]}"
fi
# ExecStart= with -check-config added: its flags parse and name a valid file.
if ! "${start[@]}" -check-config >"$tmp/start.out" 2>&1; then
	sed 's/^/  /' "$tmp/start.out"
	fail "$unit: ExecStart= flags are not accepted by anycastd: ${start[*]}"
fi

# 4. The security exposure, as `systemd-analyze security` rates it.
say "4. systemd-analyze security --offline=true (exposure at most $MAX_EXPOSURE)"
threshold=$(awk -v m="$MAX_EXPOSURE" 'BEGIN { printf "%d", m * 10 + 0.5 }')
out=$(SYSTEMD_COLORS=0 systemd-analyze security --offline=true --no-pager \
	--threshold="$threshold" --root="$root" anycastd.service 2>&1) && rc=0 || rc=$?
score=$(sed -n 's/.*Overall exposure level for anycastd\.service: \([0-9.]*\).*/\1/p' <<<"$out")
if [ -z "$score" ]; then
	printf '%s\n' "$out" | sed 's/^/  /'
	fail "systemd-analyze security gave no exposure level (above)"
elif [ "$rc" -ne 0 ] || awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s > m) }'; then
	# What costs the most first.
	grep '✗' <<<"$out" | awk '{ print $NF "\t" $0 }' | sort -rn | cut -f2- | sed 's/^/  /'
	fail "systemd-analyze security: exposure $score, want at most $MAX_EXPOSURE (the open settings above, costliest first)"
else
	say "security: exposure $score (at most $MAX_EXPOSURE)"
fi

# 5. The user and group, as systemd-sysusers creates them.
say "5. systemd-sysusers"
out=$(systemd-sysusers --root="$root" 2>&1) && rc=0 || rc=$?
if [ -n "$out" ]; then
	printf '%s\n' "$out" | sed 's/^/  /'
fi
if [ "$rc" -ne 0 ] || grep -qv '^Creating \(user\|group\) ' <<<"$out"; then
	fail "systemd-sysusers found problems in $sysusers (above)"
fi
# name:x:uid:gid:gecos:home:shell
pw=$(grep "^$user:" "$root/etc/passwd" 2>/dev/null || true)
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
if [ -z "$pw" ]; then
	fail "$sysusers does not create User=$user of $unit"
else
	[ "$uid" -lt 1000 ] || fail "$sysusers: user $user has UID $uid, want a system UID (< 1000)"
	[ "$shell" = /usr/sbin/nologin ] || fail "$sysusers: user $user has shell $shell, want /usr/sbin/nologin"
	[ "$home" = / ] || fail "$sysusers: user $user has home $home, want none (/)"
	grep -q "^$user:!" "$root/etc/shadow" || fail "$sysusers: user $user's password is not locked"
	if ! grep -q "^$group:x:$gid:" "$root/etc/group"; then
		fail "$sysusers: user $user's primary group is not Group=$group of $unit"
	fi
fi

# 6. The unit under a real systemd, in a container.
vip=203.0.113.77
in_ctr() { nsenter -t "$init" -a "$@"; }
prop() { in_ctr systemctl show -p "$1" --value anycastd; }

# poll SECONDS WHAT CMD...: runs CMD until it succeeds; a finding (WHAT)
# when it has not within SECONDS.
poll() {
	local deadline=$((SECONDS + $1)) limit=$1 what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			fail "$what (not within ${limit}s)"
			return 1
		fi
		sleep 0.2
	done
}

# boot_fail WHAT: a finding, with the unit's journal.
boot_fail() {
	fail "$1"
	in_ctr journalctl -u anycastd --no-pager -n 30 -o cat 2>&1 | sed 's/^/  /' || true
}

has_vip() { in_ctr ip -o addr show dev lo | grep -q " $vip/32 "; }

boot_check() {
	say "6. the unit under systemd in a container (systemd-nspawn, private network)"
	if [ "$(id -u)" -ne 0 ]; then
		fail "--boot needs root: it boots a container on an overlay of /"
		return
	fi
	if [ "$failures" -gt 0 ]; then
		say "not booted: the findings above come first"
		return
	fi
	scripts/deps.sh systemd-container
	CGO_ENABLED=0 "$GO" build -o "$tmp/anycastctl" ./cmd/anycastctl

	# A throw-away root: this machine's / below, writes to a tmpfs.
	ovl=$tmp/ovl
	local m=$ovl/merged name=anycastd-check-$$
	mkdir -p "$ovl"
	mount -t tmpfs -o size=1g,mode=0700 anycastd-check "$ovl"
	mkdir -p "$ovl/upper" "$ovl/work" "$m"
	if ! mount -t overlay anycastd-check -o "lowerdir=/,upperdir=$ovl/upper,workdir=$ovl/work" "$m"; then
		fail "cannot mount an overlay of / (overlayfs)"
		return
	fi
	install -m 0644 "$unit" "$m/usr/lib/systemd/system/anycastd.service"
	install -m 0644 "$sysusers" "$m/usr/lib/sysusers.d/anycastd.conf"
	install -m 0755 "$root/usr/sbin/anycastd" "$m/usr/sbin/anycastd"
	install -m 0755 "$tmp/anycastctl" "$m/usr/bin/anycastctl"
	mkdir -p "$m/etc/anycastd"
	local checks='"exec", "listen", "tcp"' process=
	if [ -f "$m/usr/lib/systemd/system/dbus.service" ] || [ -f "$m/lib/systemd/system/dbus.service" ]; then
		checks='"exec", "listen", "tcp", "process"'
		process=$'[[check]]\nname = "process"\ntype = "process"\nunit = "dbus.service"\nrise = 1\nfall = 1\n'
	else
		say "note: no dbus.service here (Debian package dbus): the process check with unit = is not tried"
	fi
	cat >"$m/etc/anycastd/anycastd.toml" <<-EOF
		# check-systemd.sh --boot: the peer never answers (private network).
		[bgp]
		asn = 65001
		router_id = "198.18.255.2"
		graceful_restart = true

		[[bgp.peer]]
		address = "198.18.255.1"
		asn = 65000

		[node]
		drain_time = "2s"

		# Private /tmp writable, the rest of the file system read-only.
		[[check]]
		name = "exec"
		type = "exec"
		command = ["/bin/sh", "-c", "touch /tmp/probe && ! touch /etc/probe 2>/dev/null && cat /proc/self/cgroup"]
		rise = 1
		fall = 1

		# The BGP listener on port 179 (CAP_NET_BIND_SERVICE), over sock_diag.
		[[check]]
		name = "listen"
		type = "listen"
		address = "179"
		rise = 1
		fall = 1

		[[check]]
		name = "tcp"
		type = "tcp"
		address = "127.0.0.1:9479"
		rise = 1
		fall = 1

		$process
		[[vip]]
		name = "check"
		prefixes = ["$vip/32"]
		checks = [$checks]
	EOF

	[ -d /run/systemd/nspawn ] || nspawn_run=made
	# The host's OS, booted only to basic.target: none of its own services.
	SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -q -D "$m" -M "$name" \
		--keep-unit --register=no --private-network --console=read-only \
		-b systemd.unit=basic.target >"$tmp/console.log" 2>&1 &
	nspawn_pid=$!
	init=
	local deadline=$((SECONDS + 30))
	while [ -z "$init" ]; do
		# The container's PID 1 (systemd-nspawn forks helpers first).
		init=$(ps -o pid=,args= --ppid "$nspawn_pid" 2>/dev/null | awk '$2 ~ /systemd$/ { print $1; exit }' || true)
		if [ -z "$init" ] && { ! kill -0 "$nspawn_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; }; then
			fail "the container did not start (systemd-nspawn):"
			sed 's/^/  /' "$tmp/console.log" | tail -20
			return
		fi
		[ -n "$init" ] || sleep 0.2
	done
	system_up() { in_ctr systemctl is-system-running 2>/dev/null | grep -Eqx 'running|degraded'; }
	if ! poll 60 "the container's systemd did not come up" system_up; then
		tail -20 "$tmp/console.log" | sed 's/^/  /'
		return
	fi
	say "container: $(in_ctr systemctl --version | head -n1)"

	# Start: Type=notify, so this returns once anycastd sent READY=1.
	if ! in_ctr systemctl start anycastd; then
		boot_fail "systemctl start anycastd failed"
		return
	fi
	announced() { prop StatusText | grep -q '^1 of 1 VIPs announced'; }
	poll 30 "STATUS= never said \"1 of 1 VIPs announced\" (StatusText=$(prop StatusText))" announced || {
		boot_fail "the VIP was not announced"
		return
	}
	poll 5 "VIP address $vip/32 is not on lo" has_vip || return
	say "started: StatusText=$(prop StatusText)"

	# Whether exec probes get a cgroup of their own (killed whole) or only
	# a process group: a finding unless REQUIRE_PROBE_CGROUP=0.
	local probes
	probes=$(in_ctr anycastctl checks exec -n 1 -o json 2>&1 || true)
	if grep -q 'anycastd-probe-' <<<"$probes"; then
		say "exec probes run in a cgroup of their own"
	elif [ "${REQUIRE_PROBE_CGROUP:-1}" = 1 ]; then
		fail "exec probes run without a cgroup of their own (process groups only): RestrictNamespaces=yes answers clone3 with ENOSYS, and the /bin/sh shim did not move them"
	else
		say "note: exec probes run without a cgroup of their own, in process groups"
	fi

	# The API socket: group anycastd may, others may not.
	in_ctr useradd -M -N -G anycastd check-member
	in_ctr useradd -M -N check-other
	in_ctr setpriv --reuid=check-member --regid=users --init-groups anycastctl status >/dev/null ||
		fail "anycastctl status fails for a member of group anycastd"
	local rc=0
	in_ctr setpriv --reuid=check-other --regid=users --init-groups anycastctl status >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 3 ] || fail "anycastctl status as a user outside group anycastd: exit $rc, want 3 (permission denied)"

	# Reload: the same process, still active.
	local main
	main=$(prop MainPID)
	in_ctr systemctl reload anycastd || fail "systemctl reload anycastd failed"
	# journal_has RE: the unit's journal has a line matching RE. The journal
	# is read whole first: `journalctl | grep -q` fails under pipefail when
	# grep stops at an early match and journalctl gets SIGPIPE.
	journal_has() {
		local j
		j=$(in_ctr journalctl -u anycastd --no-pager -o cat) || return 1
		grep -q -- "$1" <<<"$j"
	}
	reloaded() { journal_has '^Reloaded anycastd.service'; }
	poll 10 "systemctl reload: no \"Reloaded\" in the journal" reloaded || true
	if [ "$(prop MainPID)" != "$main" ] || [ "$(prop ActiveState)" != active ]; then
		boot_fail "after systemctl reload: MainPID $(prop MainPID) (was $main), $(prop ActiveState)"
	fi

	# A crash: Restart= starts it again, and /run/anycastd survives.
	in_ctr systemctl kill -s KILL --kill-whom=main anycastd
	restarted() { [ "$(prop NRestarts)" = 1 ] && [ "$(prop ActiveState)" = active ] && announced; }
	poll 30 "after SIGKILL anycastd was not restarted and announcing (NRestarts=$(prop NRestarts), $(prop ActiveState))" restarted || {
		boot_fail "no restart"
		return
	}

	# A planned restart (graceful_restart): exit 75, started again at once
	# by RestartForceExitStatus=75, not counted as a failure.
	in_ctr anycastctl restart >/dev/null || fail "anycastctl restart failed"
	replanned() { [ "$(prop NRestarts)" = 2 ] && [ "$(prop ActiveState)" = active ] && announced; }
	poll 30 "after anycastctl restart anycastd was not started again and announcing (NRestarts=$(prop NRestarts), $(prop ActiveState), Result=$(prop Result))" replanned || {
		boot_fail "no start after a planned restart"
		return
	}
	said75() { journal_has 'exiting with status 75'; }
	poll 10 "the journal does not say the planned restart exited with status 75" said75 || true

	# Stop: drain (2 s), withdraw, remove the address it added, even though
	# an earlier run added it: only the preserved journal says it is its own.
	local t0=$SECONDS
	in_ctr systemctl stop anycastd || boot_fail "systemctl stop anycastd failed"
	if [ "$(prop Result)" != success ] || [ "$(prop ExecMainStatus)" != 0 ]; then
		boot_fail "stop: Result=$(prop Result), exit status $(prop ExecMainStatus); want success, 0"
	fi
	[ $((SECONDS - t0)) -ge 1 ] || fail "stop took under a second: no drain (drain_time 2s)"
	if has_vip; then
		boot_fail "after the stop $vip/32 is still on lo: the restarted anycastd did not know it as its own (RuntimeDirectoryPreserve=?)"
	fi
	[ "$failures" -gt 0 ] || say "boot: start, STATUS=, exec probes in cgroups, API access, reload, restart after a crash, planned restart, stop: ok"
}

if [ "$boot" = yes ]; then
	boot_check
fi

if [ "$failures" -gt 0 ]; then
	say "$failures finding(s)" >&2
	exit 1
fi
say "ok"
