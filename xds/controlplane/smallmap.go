package controlplane

import "iter"

// smallMapMax is how many entries a smallMap keeps in its slice before it
// switches to a hash map.
const smallMapMax = 8

// smallMap is a string-keyed map for the per-stream sets that usually hold
// a handful of entries (a node's subscribed and ACKed resources): up to
// smallMapMax entries live in a slice (one entry costs its 16-byte key and
// value, where a Go map costs ~300 bytes even for one), more in a map. The
// zero value is empty and ready to use; it is not safe for concurrent use.
type smallMap[V any] struct {
	small []smallEntry[V]
	big   map[string]V
}

type smallEntry[V any] struct {
	key string
	val V
}

// Len is the number of entries.
func (m *smallMap[V]) Len() int {
	if m.big != nil {
		return len(m.big)
	}
	return len(m.small)
}

// Get returns the value of key.
func (m *smallMap[V]) Get(key string) (V, bool) {
	if m.big != nil {
		v, ok := m.big[key]
		return v, ok
	}
	for i := range m.small {
		if m.small[i].key == key {
			return m.small[i].val, true
		}
	}
	var zero V
	return zero, false
}

// Set sets key to val.
func (m *smallMap[V]) Set(key string, val V) {
	if m.big != nil {
		m.big[key] = val
		return
	}
	for i := range m.small {
		if m.small[i].key == key {
			m.small[i].val = val
			return
		}
	}
	if len(m.small) < smallMapMax {
		m.small = append(m.small, smallEntry[V]{key, val})
		return
	}
	m.big = make(map[string]V, 2*smallMapMax)
	for _, e := range m.small {
		m.big[e.key] = e.val
	}
	m.big[key] = val
	m.small = nil
}

// Delete removes key (nothing when absent). A map that shrinks to a quarter
// of smallMapMax goes back to a slice.
func (m *smallMap[V]) Delete(key string) {
	if m.big != nil {
		delete(m.big, key)
		if len(m.big) <= smallMapMax/4 {
			small := make([]smallEntry[V], 0, len(m.big))
			for k, v := range m.big {
				small = append(small, smallEntry[V]{k, v})
			}
			m.small, m.big = small, nil
		}
		return
	}
	for i := range m.small {
		if m.small[i].key == key {
			last := len(m.small) - 1
			m.small[i] = m.small[last]
			m.small[last] = smallEntry[V]{} // no stale key kept alive
			m.small = m.small[:last]
			if last == 0 {
				m.small = nil
			}
			return
		}
	}
}

// All yields every entry, in no particular order. The map must not be
// modified during the iteration.
func (m *smallMap[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if m.big != nil {
			for k, v := range m.big {
				if !yield(k, v) {
					return
				}
			}
			return
		}
		for _, e := range m.small {
			if !yield(e.key, e.val) {
				return
			}
		}
	}
}
