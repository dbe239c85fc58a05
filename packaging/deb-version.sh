#!/bin/sh
# packaging/deb-version.sh VERSION: prints the Debian package version for
# the anycastd VERSION the Makefile takes from `git describe --tags --always
# --dirty` (the binaries keep VERSION itself: `anycastd -version`).
#   v1.2.3                -> 1.2.3
#   v1.2.3-rc1            -> 1.2.3~rc1          (sorts before 1.2.3)
#   v1.2.3-4-gabc1234     -> 1.2.3+4.gabc1234   (4 commits after v1.2.3)
#   abc1234 (no tag yet)  -> 0.0.0+N.gabc1234   (N: commits in HEAD; a tag has a dot, a hash none)
#   ...-dirty             -> ...+dirty or ....dirty
#   dev (no git)          -> 0.0.0+dev
set -eu

v=${1:?usage: deb-version.sh VERSION}
dirty=
case $v in *-dirty) v=${v%-dirty} dirty=dirty ;; esac

case $v in
v[0-9]* | [0-9]*.*)
	v=$(printf '%s\n' "${v#v}" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+\1.g\2/; s/-/~/g')
	;;
dev)
	v=0.0.0+dev
	;;
*)
	n=$(git rev-list --count HEAD 2>/dev/null || echo 0)
	v=0.0.0+$n.g$v
	;;
esac
if [ -n "$dirty" ]; then
	case $v in *+*) v=$v.$dirty ;; *) v=$v+$dirty ;; esac
fi

# Debian allows only [A-Za-z0-9.+~] here (no revision: a native package).
printf '%s\n' "$v" | sed -E 's/[^A-Za-z0-9.+~]+/./g'
