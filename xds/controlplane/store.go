package controlplane

import (
	"context"
	"slices"
	"sync"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

// NodeRecord is what the route index holds for one node.
type NodeRecord struct {
	NodeID  string
	Address string
	Status  agpv1.RouteEndpoint_Status
	// Topics are the node's subscribed topics, sorted.
	Topics []string
}

// Store is the route index: node records and, derived from them, the route of
// each topic. Every mutation returns the topics whose route changed, so the
// caller can publish exactly those. Implementations are safe for concurrent
// use. The default is NewMemoryStore; a shared store (etcd...) can implement
// the same interface for several replicas.
type Store interface {
	// PutNode replaces everything held for rec.NodeID.
	PutNode(ctx context.Context, rec NodeRecord) (changed []string, err error)
	// UpdateTopics adds and removes topics of an existing node (idempotent).
	UpdateTopics(ctx context.Context, nodeID string, add, remove []string) (changed []string, err error)
	// SetStatus changes the status of an existing node's endpoints.
	SetStatus(ctx context.Context, nodeID string, status agpv1.RouteEndpoint_Status) (changed []string, err error)
	// DeleteNode withdraws a node and all its topics.
	DeleteNode(ctx context.Context, nodeID string) (changed []string, err error)
	// Route returns the route of topic, or nil when no node subscribes to it.
	// Endpoints are sorted by node id. The result must not be modified.
	Route(ctx context.Context, topic string) (*agpv1.TopicRoute, error)
	// Node returns one node's record (ok false when unknown).
	Node(ctx context.Context, nodeID string) (NodeRecord, bool, error)
	// Nodes returns every node record, sorted by node id.
	Nodes(ctx context.Context) ([]NodeRecord, error)
	// Routes returns every route, sorted by topic.
	Routes(ctx context.Context) ([]*agpv1.TopicRoute, error)
}

// MemoryStore is the in-memory Store.
type MemoryStore struct {
	mu     sync.RWMutex
	nodes  map[string]*memNode
	topics map[string]map[string]struct{} // topic -> node ids
}

type memNode struct {
	address string
	status  agpv1.RouteEndpoint_Status
	topics  []string // sorted, unique (a slice: most nodes hold few topics)
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{nodes: make(map[string]*memNode), topics: make(map[string]map[string]struct{})}
}

func (s *MemoryStore) addTopic(nodeID, topic string) {
	set := s.topics[topic]
	if set == nil {
		set = make(map[string]struct{}, 1)
		s.topics[topic] = set
	}
	set[nodeID] = struct{}{}
}

func (s *MemoryStore) removeTopic(nodeID, topic string) {
	set := s.topics[topic]
	delete(set, nodeID)
	if len(set) == 0 {
		delete(s.topics, topic)
	}
}

// PutNode implements Store.
func (s *MemoryStore) PutNode(_ context.Context, rec NodeRecord) ([]string, error) {
	topics := sortedSet(rec.Topics)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.nodes[rec.NodeID]
	n := &memNode{address: rec.Address, status: rec.Status, topics: topics}
	var changed []string
	if old == nil {
		for _, t := range topics {
			s.addTopic(rec.NodeID, t)
		}
		changed = slices.Clone(topics)
	} else {
		endpointChanged := old.address != n.address || old.status != n.status
		mergeSorted(old.topics, topics, func(t string, inOld, inNew bool) {
			switch {
			case inOld && !inNew:
				s.removeTopic(rec.NodeID, t)
				changed = append(changed, t)
			case !inOld && inNew:
				s.addTopic(rec.NodeID, t)
				changed = append(changed, t)
			case endpointChanged:
				changed = append(changed, t)
			}
		})
	}
	s.nodes[rec.NodeID] = n
	return changed, nil
}

// UpdateTopics implements Store. Unknown nodes are an error. The node ends
// with its topics plus add minus remove.
func (s *MemoryStore) UpdateTopics(_ context.Context, nodeID string, add, remove []string) ([]string, error) {
	add, remove = sortedSet(add), sortedSet(remove)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[nodeID]
	if n == nil {
		return nil, errUnknownNode(nodeID)
	}
	next := make([]string, 0, len(n.topics)+len(add))
	var changed []string
	mergeSorted(n.topics, add, func(t string, had, added bool) {
		if _, ok := slices.BinarySearch(remove, t); ok {
			if had {
				s.removeTopic(nodeID, t)
				changed = append(changed, t)
			}
			return
		}
		next = append(next, t)
		if !had {
			s.addTopic(nodeID, t)
			changed = append(changed, t)
		}
	})
	n.topics = slices.Clip(next)
	return changed, nil
}

// SetStatus implements Store.
func (s *MemoryStore) SetStatus(_ context.Context, nodeID string, status agpv1.RouteEndpoint_Status) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[nodeID]
	if n == nil {
		return nil, errUnknownNode(nodeID)
	}
	if n.status == status {
		return nil, nil
	}
	n.status = status
	return slices.Clone(n.topics), nil
}

// DeleteNode implements Store. Deleting an unknown node is not an error.
func (s *MemoryStore) DeleteNode(_ context.Context, nodeID string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[nodeID]
	if n == nil {
		return nil, nil
	}
	for _, t := range n.topics {
		s.removeTopic(nodeID, t)
	}
	delete(s.nodes, nodeID)
	return n.topics, nil // no longer held by the store
}

// sortedSet returns ts sorted without duplicates, in a new slice of exactly
// that length.
func sortedSet(ts []string) []string {
	if len(ts) == 0 {
		return nil
	}
	out := slices.Clone(ts)
	slices.Sort(out)
	return slices.Clip(slices.Compact(out))
}

// mergeSorted walks two sorted sets in order and calls f once for every
// element of either, saying which of the two hold it.
func mergeSorted(a, b []string, f func(t string, inA, inB bool)) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			f(a[i], true, false)
			i++
		case i == len(a) || b[j] < a[i]:
			f(b[j], false, true)
			j++
		default:
			f(a[i], true, true)
			i++
			j++
		}
	}
}

// Route implements Store.
func (s *MemoryStore) Route(_ context.Context, topic string) (*agpv1.TopicRoute, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.routeLocked(topic), nil
}

func (s *MemoryStore) routeLocked(topic string) *agpv1.TopicRoute {
	set := s.topics[topic]
	if len(set) == 0 {
		return nil
	}
	ids := sortedKeys(set)
	r := &agpv1.TopicRoute{Topic: topic, Endpoints: make([]*agpv1.RouteEndpoint, 0, len(ids))}
	for _, id := range ids {
		n := s.nodes[id]
		r.Endpoints = append(r.Endpoints, &agpv1.RouteEndpoint{NodeId: id, Address: n.address, Status: n.status})
	}
	return r
}

// Node implements Store.
func (s *MemoryStore) Node(_ context.Context, nodeID string) (NodeRecord, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.nodes[nodeID]
	if n == nil {
		return NodeRecord{}, false, nil
	}
	return NodeRecord{NodeID: nodeID, Address: n.address, Status: n.status, Topics: slices.Clone(n.topics)}, true, nil
}

// Nodes implements Store.
func (s *MemoryStore) Nodes(_ context.Context) ([]NodeRecord, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]NodeRecord, 0, len(s.nodes))
	for _, id := range sortedKeys(s.nodes) {
		n := s.nodes[id]
		out = append(out, NodeRecord{NodeID: id, Address: n.address, Status: n.status, Topics: slices.Clone(n.topics)})
	}
	return out, nil
}

// Routes implements Store.
func (s *MemoryStore) Routes(_ context.Context) ([]*agpv1.TopicRoute, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*agpv1.TopicRoute, 0, len(s.topics))
	for _, t := range sortedKeys(s.topics) {
		out = append(out, s.routeLocked(t))
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
