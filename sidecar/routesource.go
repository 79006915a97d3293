package sidecar

// RouteSource returns where the node learns its routes: the one passed with
// WithRouteSource, or the static routes of its Config. The MLS layer uses it
// to know a channel's participants.
func (n *Node) RouteSource() RouteSource { return n.routes }
