// Package hostaddr puts anycastd's VIP addresses on a local interface, so
// that the services can bind them and the host accepts their traffic,
// through rtnetlink. It is the only package that imports
// github.com/vishvananda/netlink.
//
// It owns three things:
//
//   - the addresses: [New] prepares the configured interface (lo, or a dummy
//     link it creates and brings up), and [Host.Add] and [Host.Remove] put
//     single-address VIP prefixes on it and take them away; [Host] implements
//     announcer.Addresses. With [interface] method = "local-route" a VIP is a
//     route of type local in table local on the interface instead of an
//     address (protocol [RouteProtocol]; see route.go): constant cost per
//     VIP where an address costs O(addresses on the link). Everything below
//     holds for those routes as for addresses.
//   - the ownership journal: a write-ahead record in the state dir of every
//     address (and link) anycastd adds, written before the change. anycastd
//     removes only what it added; an address that was there before is
//     adopted and left alone. A restart, even after a crash, reads the journal
//     to keep what is still its own, remove what it added for VIPs no longer
//     configured, and clean up an interface an earlier configuration used,
//     and the entries of the other method when the method changed (records
//     say which kind each entry is; a journal without kinds is addresses).
//     [Host.Close] removes what anycastd added, and the link if it created it.
//   - the address watch: [Host.Watch] follows the interface's addresses (or
//     table local's routes and the links) over a netlink subscription and
//     reports a VIP address (local route) deleted by someone else, and its
//     return.
//
// Linux only: elsewhere [New] and [Host.Watch] fail with an error that says
// to set [interface] manage = false and put the addresses on yourself.
package hostaddr
