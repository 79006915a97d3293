package sidecar

import (
	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

// StaticRoutes is a RouteSource with fixed routes; it is the default, built
// from Config.StaticRoutes (topic=node) and Config.StaticPeers (addresses).
type StaticRoutes struct {
	m map[string][]*agpv1.RouteEndpoint
}

// NewStaticRoutes returns a RouteSource for routes (topic -> node ids),
// taking addresses from peers (node id -> host:port; may be empty for nodes
// that dial in).
func NewStaticRoutes(routes map[string][]string, peers map[string]string) *StaticRoutes {
	return newStaticRoutes(routes, peers)
}

func newStaticRoutes(routes map[string][]string, peers map[string]string) *StaticRoutes {
	m := make(map[string][]*agpv1.RouteEndpoint, len(routes))
	for topic, nodes := range routes {
		for _, node := range nodes {
			m[topic] = append(m[topic], &agpv1.RouteEndpoint{
				NodeId: node, Address: peers[node], Status: agpv1.RouteEndpoint_STATUS_ACTIVE,
			})
		}
	}
	return &StaticRoutes{m: m}
}

// Endpoints implements RouteSource.
func (s *StaticRoutes) Endpoints(topic string) []*agpv1.RouteEndpoint { return s.m[topic] }

// Watch implements RouteSource; static routes need no fetching.
func (s *StaticRoutes) Watch(string) {}
