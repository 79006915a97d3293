package sidecar

import "testing"

func TestBufPool(t *testing.T) {
	var p bufPool
	for _, n := range []int{0, 1, 255, 256, 257, 1100, 4096, 4097, 1 << 20, 4 << 20, 4<<20 + 1} {
		b := p.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d): len %d", n, len(*b))
		}
		if c := bufClass(n); c >= 0 && cap(*b) != 1<<(c+bufMinShift) {
			t.Fatalf("Get(%d): cap %d, class %d", n, cap(*b), c)
		}
		if c := bufClass(n); c >= 0 && n > 256 && cap(*b) >= 2*n {
			t.Fatalf("Get(%d): cap %d is more than twice the length", n, cap(*b))
		}
		p.Put(b)
	}
	if bufClass(4<<20+1) != -1 {
		t.Fatal("sizes above the largest class must not be pooled")
	}
	odd := make([]byte, 300)
	p.Put(&odd) // not a power of two: ignored, no panic
	b := p.Get(300)
	if len(*b) != 300 || cap(*b) != 512 {
		t.Fatalf("Get(300) after a foreign Put: len %d cap %d", len(*b), cap(*b))
	}
}
