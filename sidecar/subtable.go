package sidecar

import (
	"encoding/json"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// SubStatus is the status of one subscriber of a topic.
type SubStatus string

// Subscriber statuses.
const (
	SubActive    SubStatus = "active"
	SubPending   SubStatus = "pending"
	SubWithdrawn SubStatus = "withdrawn"
)

// topicEntry holds a topic's local subscribers. The conns slice is
// copy-on-write: readers load it without a lock and never modify it.
type topicEntry struct {
	conns atomic.Pointer[[]*agentConn]
	rr    atomic.Uint32 // round-robin cursor for anycast
}

func (e *topicEntry) load() []*agentConn {
	if p := e.conns.Load(); p != nil {
		return *p
	}
	return nil
}

// SubTable is the local part of the subscription table: topic -> local
// subscriber connections. Lookups take a read lock and return an immutable
// slice; changes copy the topic's slice.
type SubTable struct {
	mu     sync.RWMutex
	topics map[string]*topicEntry
	sink   SubscriptionSink // called under mu, so in order
}

func newSubTable(sink SubscriptionSink) *SubTable {
	return &SubTable{topics: make(map[string]*topicEntry), sink: sink}
}

// lookup returns the topic's entry, or nil.
func (t *SubTable) lookup(topic string) *topicEntry {
	t.mu.RLock()
	e := t.topics[topic]
	t.mu.RUnlock()
	return e
}

// lookupBytes is lookup for a topic held in bytes; it does not allocate.
func (t *SubTable) lookupBytes(topic []byte) *topicEntry {
	t.mu.RLock()
	e := t.topics[string(topic)]
	t.mu.RUnlock()
	return e
}

// add subscribes c to topic. It reports whether c was newly added.
func (t *SubTable) add(topic string, c *agentConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.topics[topic]
	if e == nil {
		e = &topicEntry{}
		t.topics[topic] = e
	}
	old := e.load()
	if slices.Contains(old, c) {
		return false
	}
	next := make([]*agentConn, len(old), len(old)+1)
	copy(next, old)
	next = append(next, c)
	e.conns.Store(&next)
	if len(old) == 0 && t.sink != nil {
		t.sink.TopicAdded(topic)
	}
	return true
}

// remove unsubscribes c from topic. It reports whether c was subscribed.
func (t *SubTable) remove(topic string, c *agentConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.topics[topic]
	if e == nil {
		return false
	}
	old := e.load()
	i := slices.Index(old, c)
	if i < 0 {
		return false
	}
	if len(old) == 1 {
		e.conns.Store(nil)
		delete(t.topics, topic)
		if t.sink != nil {
			t.sink.TopicRemoved(topic)
		}
		return true
	}
	next := make([]*agentConn, 0, len(old)-1)
	next = append(next, old[:i]...)
	next = append(next, old[i+1:]...)
	e.conns.Store(&next)
	return true
}

// Topics returns the topics with local subscribers, sorted.
func (t *SubTable) Topics() []string {
	t.mu.RLock()
	out := make([]string, 0, len(t.topics))
	for k := range t.topics {
		out = append(out, k)
	}
	t.mu.RUnlock()
	sort.Strings(out)
	return out
}

// LocalSubscriber is a local subscriber in a dump.
type LocalSubscriber struct {
	ConnID uint64    `json:"conn_id"`
	Status SubStatus `json:"status"`
}

// RemoteSubscriber is a remote subscriber node in a dump.
type RemoteSubscriber struct {
	NodeID  string    `json:"node_id"`
	Address string    `json:"address,omitempty"`
	Status  SubStatus `json:"status"`
}

// SubscriptionInfo is one topic of the subscription table dump.
type SubscriptionInfo struct {
	Topic  string             `json:"topic"`
	Local  []LocalSubscriber  `json:"local"`
	Remote []RemoteSubscriber `json:"remote"`
}

// localSnapshot returns topic -> local subscribers.
func (t *SubTable) localSnapshot() map[string][]LocalSubscriber {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string][]LocalSubscriber, len(t.topics))
	for topic, e := range t.topics {
		conns := e.load()
		ls := make([]LocalSubscriber, 0, len(conns))
		for _, c := range conns {
			st := SubActive
			if s := c.Status(); s == StatusDraining || s == StatusDown {
				st = SubWithdrawn
			}
			ls = append(ls, LocalSubscriber{ConnID: c.id, Status: st})
		}
		slices.SortFunc(ls, func(a, b LocalSubscriber) int {
			if a.ConnID < b.ConnID {
				return -1
			}
			return 1
		})
		out[topic] = ls
	}
	return out
}

// MarshalJSON dumps the local table.
func (t *SubTable) MarshalJSON() ([]byte, error) { return json.Marshal(t.localSnapshot()) }
