package identity

import (
	"testing"
	"time"
)

func BenchmarkValidate(b *testing.B) {
	ca := newCA(b, "example.org")
	v, err := NewValidator(ca.Bundle(), []string{"example.org"})
	if err != nil {
		b.Fatal(err)
	}
	v.SetDenyList(must(NewDenyList("spiffe://example.org/ns/x/sa/y", "serial:01", "sha256:"+FingerprintOf(ca.Certificate()).String()[:62]+"00")))
	chain := issue(b, ca, idA, time.Hour).Certificates
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(chain, UsageClient, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseID(idA); err != nil {
			b.Fatal(err)
		}
	}
}
