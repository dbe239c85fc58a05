# conffile.awk: makes the packaged /etc/anycastd/anycastd.toml from
# examples/anycastd.toml (every key, with its default), so the two never
# drift apart. Run by mk/deb.mk:  awk -f packaging/conffile.awk examples/anycastd.toml
#
# The result passes `anycastd -check-config` yet announces nothing: only
# [bgp] asn and router_id and the first [[bgp.peer]]'s address and asn stay
# set (a daemon started by mistake opens one session to a placeholder
# address in 198.18.0.0/15 and has no VIP to announce); every other setting, check and VIP
# is commented out. The single tables ([node], [interface], [api],
# [metrics], [log]) keep their headers, so uncommenting a key there works.
# The example's own header (up to the first blank line) is replaced.

BEGIN {
	print "# /etc/anycastd/anycastd.toml: anycastd's configuration (TOML)."
	print "#"
	print "# Only placeholders are set (private AS numbers, addresses from the test"
	print "# range 198.18.0.0/15): this node's [bgp] asn and router_id and one router"
	print "# ([[bgp.peer]]); no VIP is announced. Set your own, and add health checks"
	print "# ([[check]]) and VIPs ([[vip]]) by uncommenting the lines below (each"
	print "# shows its default where it has one). Then check the file and start the"
	print "# daemon:"
	print "#"
	print "#   anycastd -check-config /etc/anycastd/anycastd.toml"
	print "#   systemctl enable --now anycastd"
	print "#"
	print "# After a change, `systemctl reload anycastd` (or `anycastctl reload`)."
	print "# Reference: anycastd(8), anycastctl(1) and the README at"
	print "# https://github.com/anycastd/anycastd (Configuration reference)."
	header = 1
	peers = 0
}

header {
	if ($0 ~ /^[ \t]*$/) {
		header = 0
		print ""
	}
	next
}

# Comments and blank lines as they are.
/^[ \t]*(#|$)/ { print; next }

# Table headers.
/^[ \t]*\[/ {
	table = $0
	sub(/[ \t]*#.*$/, "", table)
	gsub(/[ \t]/, "", table)
	if (table == "[[bgp.peer]]")
		peers++
	keep = table == "[bgp]" || (table == "[[bgp.peer]]" && peers == 1) ||
		table == "[node]" || table == "[interface]" || table == "[api]" ||
		table == "[metrics]" || table == "[log]"
	print (keep ? $0 : comment($0))
	next
}

# Keys: the required ones of [bgp] and the first peer stay.
{
	key = $0
	sub(/^[ \t]*/, "", key)
	sub(/[ \t]*=.*$/, "", key)
	set = (table == "[bgp]" && (key == "asn" || key == "router_id")) ||
		(table == "[[bgp.peer]]" && peers == 1 && (key == "address" || key == "asn"))
	print (set ? $0 : comment($0))
}

# comment returns line commented out, its trailing comment kept in its column.
function comment(line) {
	sub(/   #/, " #", line)
	return "# " line
}
