package controlplane

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

// TestSmallMapMatchesMap drives a smallMap and a Go map with the same random
// operations across the slice/map switch in both directions.
func TestSmallMapMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var m smallMap[int]
	ref := map[string]int{}
	for op := range 20000 {
		// A key space that makes the map grow past smallMapMax and shrink.
		k := fmt.Sprintf("k%d", r.IntN(3*smallMapMax))
		switch r.IntN(3) {
		case 0, 1:
			if op%1000 < 500 { // alternate growing and shrinking phases
				m.Set(k, op)
				ref[k] = op
			} else {
				m.Delete(k)
				delete(ref, k)
			}
		case 2:
			m.Delete(k)
			delete(ref, k)
		}
		if m.Len() != len(ref) {
			t.Fatalf("op %d: Len %d, want %d", op, m.Len(), len(ref))
		}
		v, ok := m.Get(k)
		rv, rok := ref[k]
		if v != rv || ok != rok {
			t.Fatalf("op %d: Get(%s) = %d %v, want %d %v", op, k, v, ok, rv, rok)
		}
		if op%97 == 0 {
			got := maps.Collect(m.All())
			if !maps.Equal(got, ref) {
				t.Fatalf("op %d: All %v, want %v", op, got, ref)
			}
		}
	}
}

func TestSmallMapZeroValue(t *testing.T) {
	var m smallMap[string]
	if m.Len() != 0 {
		t.Fatal("zero value not empty")
	}
	if _, ok := m.Get("x"); ok {
		t.Fatal("Get on empty map found something")
	}
	m.Delete("x") // no panic
	for range m.All() {
		t.Fatal("All on empty map yielded")
	}
	m.Set("a", "1")
	m.Set("a", "2")
	if v, _ := m.Get("a"); v != "2" || m.Len() != 1 {
		t.Fatalf("after overwrite: %q, len %d", v, m.Len())
	}
}

// TestSmallMapOneEntryAllocations checks the point of the type: a
// one-entry smallMap is its header and a one-element slice, no hash table.
func TestSmallMapOneEntryAllocations(t *testing.T) {
	small := testing.AllocsPerRun(100, func() {
		var m smallMap[string]
		m.Set("acme/prod/topic", "v1")
		sinkSmall = &m
	})
	if small > 2 {
		t.Fatalf("one-entry smallMap: %.0f allocations, want at most 2", small)
	}
}

var sinkSmall *smallMap[string]
