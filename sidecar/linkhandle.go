package sidecar

import "time"

// LinkHandle is a connection-table entry kept by another component, such as
// the xDS client's link to the control plane, so that /debug/connections
// and the connection metrics show it too.
type LinkHandle struct {
	n *Node
	e *connEntry
}

// TrackLink adds an entry of the given kind (usually KindControlPlane) with
// status connecting. Call Close when the component stops.
func (n *Node) TrackLink(kind ConnKind, remote string) *LinkHandle {
	e := &connEntry{}
	n.conns.initEntry(e, kind, StatusConnecting)
	e.remote = remote
	n.conns.add(e)
	return &LinkHandle{n: n, e: e}
}

// SetStatus sets the entry's status.
func (h *LinkHandle) SetStatus(s ConnStatus) { h.e.setStatus(s) }

// SetRemote updates the remote address and identity (e.g. a SPIFFE id).
func (h *LinkHandle) SetRemote(addr, identity string) {
	h.e.mu.Lock()
	h.e.remote, h.e.identity = addr, identity
	h.e.mu.Unlock()
}

// CountIn records a message of size bytes received on the link.
func (h *LinkHandle) CountIn(size int) { h.e.countIn(size, time.Now().UnixNano()) }

// CountOut records a message of size bytes sent on the link.
func (h *LinkHandle) CountOut(size int) { h.e.countOut(size, time.Now().UnixNano()) }

// Close removes the entry.
func (h *LinkHandle) Close() { h.n.conns.remove(h.e.id) }
