package mlsinterop

import (
	"testing"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// TestExternalPSK injects external pre-shared keys from both sides and into
// Welcomes, and a resumption PSK of an earlier epoch.
func TestExternalPSK(t *testing.T) {
	forSuites(t, func(t *testing.T, d *Driver, s suite.ID) {
		id, secret := []byte("agw-psk"), []byte("0123456789abcdef0123456789abcdef")
		g, err := mls.NewGroup(s, mls.BasicCredential([]byte("a")), mls.WithGroupID(groupID(t, s)), mls.WithExternalPSK(id, secret))
		if err != nil {
			t.Fatal(err)
		}
		a := &goMember{name: "a", g: g}
		for _, n := range []string{"b", "c"} {
			call(t, d, "psk", map[string]any{"name": n, "pskId": id, "secret": secret})
		}
		res := a.merge(t)(a.g.Add([][]byte{tsKeyPackage(t, d, "b", s)}))
		call(t, d, "join", map[string]any{"name": "b", "welcome": res.Welcome})
		b := &tsMember{name: "b", d: d}
		checkAgree(t, 1, a, b)

		// Go commits a PSK proposal (no path needed).
		p, err := a.g.ExternalPSKProposal(id)
		if err != nil {
			t.Fatalf("a: psk proposal: %v", err)
		}
		res = a.merge(t)(a.g.Commit([]*wire.Proposal{p}, mls.WithHandshakeEncryption(true)))
		deliver(t, res.Commit, "commit", b)
		checkAgree(t, 2, a, b)

		// A resumption PSK of the previous epoch (usage application).
		rp, err := a.g.ResumptionPSKProposal(1)
		if err != nil {
			t.Fatalf("a: resumption psk proposal: %v", err)
		}
		res = a.merge(t)(a.g.Commit([]*wire.Proposal{rp}))
		deliver(t, res.Commit, "commit", b)
		checkAgree(t, 3, a, b)

		// ts-mls commits an external one.
		cm := call(t, d, "commit", map[string]any{"name": "b", "psks": []any{Hex(id)}})
		deliver(t, cm.Commit, "commit", a)
		checkAgree(t, 4, a, b)

		// A Welcome that needs the PSK: Go adds ts-mls c with a PSK proposal.
		p, err = a.g.ExternalPSKProposal(id)
		if err != nil {
			t.Fatalf("a: psk proposal: %v", err)
		}
		ap, err := mls.AddProposal(tsKeyPackage(t, d, "c", s))
		if err != nil {
			t.Fatal(err)
		}
		res = a.merge(t)(a.g.Commit([]*wire.Proposal{ap, p}))
		deliver(t, res.Commit, "commit", b)
		call(t, d, "join", map[string]any{"name": "c", "welcome": res.Welcome})
		c := &tsMember{name: "c", d: d}
		checkAgree(t, 5, a, b, c)

		// And the reverse: ts-mls adds Go e with a PSK proposal.
		kpe := goKeyPackage(t, "e", s)
		cm = call(t, d, "commit", map[string]any{"name": "c", "keyPackages": []any{Hex(kpe.Bytes())}, "psks": []any{Hex(id)}, "public": false})
		deliver(t, cm.Commit, "commit", a, b)
		e := goJoin(t, "e", cm.Welcome, kpe, mls.WithExternalPSK(id, secret))
		checkAgree(t, 6, a, b, c, e)
		checkMessages(t, a, b, c, e)
	})
}
