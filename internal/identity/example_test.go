package identity_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/agwproject/agw/internal/identity"
	"google.golang.org/grpc/credentials"
)

// A sidecar loads its identity from a mounted secret, follows rotations
// and uses it for peer mTLS.
func Example() {
	// The demo (and this example) makes a throwaway CA and files.
	ca, _ := identity.NewCA("example.org")
	id, _ := identity.NewWorkloadID("example.org", "shop", "checkout")
	svid, _ := ca.Issue(id, time.Hour)
	dir, _ := os.MkdirTemp("", "agw-identity")
	defer os.RemoveAll(dir)
	_ = ca.WriteFiles(dir, svid) // tls.crt, tls.key, ca.crt

	cfg := identity.DefaultConfig() // or identity.ConfigFromEnv()
	cfg.Dir = dir
	src, err := identity.NewSource(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx) //nolint:errcheck

	_ = credentials.NewTLS(src.ServerTLSConfig()) // peer listener
	_ = credentials.NewTLS(src.ClientTLSConfig()) // peer dialer
	events, stop := src.Subscribe()               // the MLS layer commits an Update on ChangeCertificate
	defer stop()
	_ = events

	fmt.Println(src.Current().ID())
	// Output: spiffe://example.org/ns/shop/sa/checkout
}
