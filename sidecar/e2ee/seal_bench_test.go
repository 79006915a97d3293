package e2ee

import (
	"context"
	"testing"
	"time"

	"github.com/agwproject/agw/internal/identity"
)

// BenchmarkSealOpen measures Seal plus Open of a 1 KiB message in a
// point-to-point session: the per-message cost of the data path.
func BenchmarkSealOpen(b *testing.B) {
	ca, _ := identity.NewCA("example.org")
	net := newMemNet()
	defer net.close()
	var ms []*Manager
	for _, id := range []string{"a", "b"} {
		src, err := ca.MemorySource(identity.MustParseID("spiffe://example.org/ns/agents/sa/"+id), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		defer src.Close()
		cfg := DefaultConfig()
		cfg.RotateMessages = 0
		m, err := New(cfg, id, src, net.endpoint(id))
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		net.attach(m)
		ms = append(ms, m)
	}
	ctx := context.Background()
	pt := make([]byte, 1024)
	routing := []byte("routing")
	if _, err := ms[0].SealPeer(ctx, "b", routing, pt); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ct, err := ms[0].SealPeer(ctx, "b", routing, pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ms[1].Open(ctx, "a", routing, ct); err != nil {
			b.Fatal(err)
		}
	}
}
