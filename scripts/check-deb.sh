#!/usr/bin/env bash
# scripts/check-deb.sh (CI, as root): builds the Debian package (make deb),
# lints it (lintian: no error or warning that packaging/lintian-overrides
# does not explain), installs it with dpkg -i, checks what a user would
# (the binaries and their version, the shipped configuration, the user, the
# unit where systemd looks and not enabled, the man pages against -h, the
# completions), reinstalls it over an edited configuration, removes and
# purges it, and checks nothing is left.
#
# It leaves the machine as it found it: it refuses to run when anycastd is
# already installed, never starts the service (a policy-rc.d that forbids
# every start is in place while dpkg runs; a policy-rc.d already there is put
# back), and deletes the anycastd user and group if it made them (the
# package keeps them on purge, as Debian does). Installs lintian and man-db
# when missing (scripts/deps.sh). Leaves dist/anycastd_*.deb.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export DEBIAN_FRONTEND=noninteractive

say() { printf 'check-deb: %s\n' "$*"; }
fail() {
	printf 'check-deb: FAIL: %s\n' "$*" >&2
	exit 1
}

# installed: dpkg knows anycastd (installed, or removed with its configuration left).
installed() {
	local status
	status=$(dpkg-query -W -f='${Status}' anycastd 2>/dev/null) || return 1
	[[ $status != *not-installed* ]]
}

[ "$(id -u)" -eq 0 ] || fail "run as root (it installs and purges the package)"
if installed; then
	fail "anycastd is already installed here (dpkg -s anycastd); this check would purge it"
fi
[ ! -e /etc/anycastd ] || fail "/etc/anycastd exists (not from the package); this check would lose it"
had_user=$(getent passwd anycastd || true)
had_group=$(getent group anycastd || true)

scripts/deps.sh lintian man-db

# --- build ---------------------------------------------------------------
# The version fixed first, so that a commit during the build changes nothing.
read -r version debversion < <(make -s --no-print-directory deb-version)
make --no-print-directory deb VERSION="$version"
debs=(dist/anycastd_"$debversion"_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "make deb made no dist/anycastd_${debversion}_*.deb"
deb=${debs[0]}
say "built $deb (anycastd $version)"

# --- lint ----------------------------------------------------------------
# Any error or warning not overridden fails; info tags and the overrides
# (with their reasons) are shown. (lintian 2.116's --fail-on counts
# overridden tags once --show-overrides is given: the verdict is read from
# the tags printed instead.)
lint=$(lintian --fail-on none --display-info --show-overrides "$deb" 2>&1) || fail "lintian failed to run: $lint"
printf '%s\n' "$lint" | grep -v '^running with root privileges' || true
if grep -qE '^[EW]: ' <<<"$lint"; then
	fail "lintian: fix the E:/W: tags above, or override each in packaging/lintian-overrides with its reason"
fi
say "lintian: clean"

# --- install (nothing may start) -------------------------------------------
policy=/usr/sbin/policy-rc.d
saved_policy=
cleanup() {
	local rc=$?
	if installed; then
		dpkg --purge anycastd >/dev/null 2>&1 || true
	fi
	if [ -n "$saved_policy" ]; then
		mv -f "$saved_policy" "$policy"
	else
		rm -f "$policy"
	fi
	if [ -z "$had_user" ] && getent passwd anycastd >/dev/null; then userdel anycastd || true; fi
	if [ -z "$had_group" ] && getent group anycastd >/dev/null; then groupdel anycastd || true; fi
	exit "$rc"
}
if [ -e "$policy" ]; then
	saved_policy=$(mktemp /usr/sbin/.policy-rc.d.check-deb.XXXXXX)
	cp -p "$policy" "$saved_policy"
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
printf '#!/bin/sh\n# check-deb.sh: no service may start\nexit 101\n' >"$policy"
chmod 755 "$policy"

dpkg -i "$deb"
say "installed"

# --- what a user checks ----------------------------------------------------
got=$(/usr/sbin/anycastd -version)
[ "$got" = "anycastd $version" ] || fail "anycastd -version: got '$got', want 'anycastd $version'"
conf=/etc/anycastd/anycastd.toml
/usr/sbin/anycastd -check-config "$conf" >/dev/null ||
	fail "the shipped $conf does not pass anycastd -check-config"
getent passwd anycastd >/dev/null || fail "no anycastd user (getent passwd anycastd)"
getent group anycastd >/dev/null || fail "no anycastd group"
# The unit's ExecStartPre runs the check as the anycastd user: it must read the file.
runuser -u anycastd -- /usr/sbin/anycastd -check-config "$conf" >/dev/null ||
	fail "user anycastd cannot check $conf"
perm=$(stat -c '%U:%G %a' "$conf")
[ "$perm" = "root:anycastd 640" ] || fail "$conf is $perm, want root:anycastd 640"
[ "$(dpkg-statoverride --list "$conf")" = "root anycastd 640 $conf" ] || fail "no statoverride root anycastd 640 on $conf"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' anycastd)
grep -q "^ $conf " <<<"$conffiles" || fail "$conf is not a conffile"

usage=$(/usr/bin/anycastctl -h) || fail "anycastctl -h failed"
grep -q '^Usage: anycastctl' <<<"$usage" || fail "anycastctl -h prints no usage"

unit=/usr/lib/systemd/system/anycastd.service
[ -f "$unit" ] || fail "no $unit"
paths=$(systemd-analyze --system unit-paths)
grep -qx "$(dirname "$unit")" <<<"$paths" ||
	fail "systemd does not look in $(dirname "$unit")"
[ -f /usr/lib/sysusers.d/anycastd.conf ] || fail "no /usr/lib/sysusers.d/anycastd.conf"
enabled=$(systemctl is-enabled anycastd.service 2>&1 || true)
[ "$enabled" = disabled ] || fail "systemctl is-enabled anycastd: '$enabled', want disabled (the package must not enable it)"

# The man pages: installed where man finds them, clean roff, and every flag
# of -h and every command of anycastctl is in them.
for page in anycastd.8 anycastctl.1; do
	path=$(man -w "${page%.*}" 2>/dev/null) || fail "man -w ${page%.*}: not found"
	[ "$path" = "/usr/share/man/man${page##*.}/$page.gz" ] || fail "man -w ${page%.*}: $path"
	warn=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$path" 2>&1 >/dev/null) || fail "man $page failed: $warn"
	[ -z "$warn" ] || fail "man --warnings $page: $warn"
done
# mentions TEXT WORD: the page's TEXT has WORD as a word; a flag -x may be
# written -x or --x. (Pipelines here read whole outputs into variables
# first: with pipefail, a grep -q that stops early would fail its writer.)
plain() { zcat "$1" | sed 's/\\-/-/g; s/\\f[BIRP]//g'; }
mentions() { grep -qE -- "(^|[^A-Za-z-])-?$2([^A-Za-z-]|\$)" <<<"$1"; }
daemon_page=$(plain /usr/share/man/man8/anycastd.8.gz)
ctl_page=$(plain /usr/share/man/man1/anycastctl.1.gz)
daemon_usage=$(/usr/sbin/anycastd -h) || fail "anycastd -h failed"
flags=$(sed -n 's/^  \(-[a-z-]*\).*/\1/p' <<<"$daemon_usage")
[ -n "$flags" ] || fail "anycastd -h lists no flags"
for f in $flags; do
	mentions "$daemon_page" "$f" || fail "anycastd(8) does not document $f (anycastd -h has it)"
done
cmds=$(sed -n '/^Commands:/,/^$/s/^  \([a-z]*\) .*/\1/p' <<<"$usage")
[ -n "$cmds" ] || fail "anycastctl -h lists no commands"
for c in $cmds $(sed -n 's/^  \(-[a-z-]*\).*/\1/p' <<<"$usage"); do
	mentions "$ctl_page" "$c" || fail "anycastctl(1) does not document $c (anycastctl -h has it)"
done
bash -n /usr/share/bash-completion/completions/anycastctl || fail "bash completion: syntax error"
bash_completion=$(cat /usr/share/bash-completion/completions/anycastctl)
zsh_completion=$(cat /usr/share/zsh/vendor-completions/_anycastctl)
for c in $cmds $(sed -n 's/^  \(-[a-z-]*\).*/\1/p' <<<"$usage"); do
	mentions "$bash_completion" "$c" || fail "the bash completion lacks $c (anycastctl -h has it)"
	mentions "$zsh_completion" "$c" || fail "the zsh completion lacks $c (anycastctl -h has it)"
done
say "installed files, user, unit, man pages and completions: ok"

# --- reinstall over an edited configuration: dpkg keeps the edit ------------
echo "# edited by check-deb.sh" >>"$conf"
dpkg -i "$deb" >/dev/null
tail -n 1 "$conf" | grep -q 'edited by check-deb.sh' || fail "a reinstall replaced the edited $conf"
perm=$(stat -c '%U:%G %a' "$conf")
[ "$perm" = "root:anycastd 640" ] || fail "after a reinstall $conf is $perm, want root:anycastd 640"
say "reinstall kept the edited configuration"

# --- enabled by the administrator, removed, then purged: nothing left -------
# (enable without --now starts nothing; a purge removes the links it made)
systemctl enable anycastd.service >/dev/null 2>&1 || fail "systemctl enable anycastd failed"
wants=/etc/systemd/system/multi-user.target.wants/anycastd.service
[ -L "$wants" ] || fail "systemctl enable made no $wants"
mapfile -t files < <(dpkg -L anycastd | while read -r f; do [ -d "$f" ] || echo "$f"; done)
mkdir -p /run/anycastd # as the unit's RuntimeDirectory would have
dpkg -r anycastd >/dev/null
[ -f "$conf" ] || fail "dpkg -r removed the conffile (only a purge may)"
[ -d /run/anycastd ] || fail "dpkg -r removed /run/anycastd (only a purge may: it holds the address journal)"
dpkg --purge anycastd >/dev/null
if out=$(dpkg -L anycastd 2>/dev/null) && [ -n "$out" ]; then fail "dpkg -L anycastd after purge: $out"; fi
for f in "${files[@]}"; do
	[ ! -e "$f" ] || fail "$f is left after purge"
done
[ ! -e /etc/anycastd ] || fail "/etc/anycastd is left after purge"
[ ! -L "$wants" ] || fail "$wants (systemctl enable) is left after purge"
[ ! -e /var/lib/systemd/deb-systemd-helper-enabled/anycastd.service.dsh-also ] ||
	fail "deb-systemd-helper's state for anycastd.service is left after purge"
[ ! -e /run/anycastd ] || fail "/run/anycastd is left after purge"
if dpkg-statoverride --list "$conf" >/dev/null; then fail "the statoverride on $conf is left after purge"; fi
say "purged: nothing left (${#files[@]} files checked)"
say "ok: $deb"
