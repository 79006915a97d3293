package identity

import (
	"errors"
	"testing"
	"time"
)

// fuzzCA is shared by the fuzz targets (making a CA per input is slow).
var fuzzCA = func() *CA {
	ca, err := NewCA("example.org")
	if err != nil {
		panic(err)
	}
	return ca
}()

func FuzzParseSVIDPEM(f *testing.F) {
	svid, err := fuzzCA.Issue(MustParseID(idA), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	key, _ := svid.KeyPEM()
	ed, _ := fuzzCA.IssueWithOptions(MustParseID(idB), IssueOptions{KeyType: KeyEd25519})
	edKey, _ := ed.KeyPEM()
	f.Add(svid.CertificatesPEM(), key)
	f.Add(ed.CertificatesPEM(), edKey)
	f.Add(svid.CertificatesPEM(), edKey)
	f.Add(fuzzCA.Bundle().PEM(), key)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		s, err := ParseSVIDPEM(certPEM, keyPEM)
		if err != nil {
			return
		}
		if s.ID.IsZero() || s.Leaf() == nil || !publicKeysEqual(s.PrivateKey.Public(), s.Leaf().PublicKey) {
			t.Fatal("accepted SVID without id or with a foreign key")
		}
	})
}

func FuzzParseBundlePEM(f *testing.F) {
	f.Add(fuzzCA.Bundle().PEM())
	f.Add(append(fuzzCA.Bundle().PEM(), "junk"...))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundlePEM(data)
		if err != nil {
			return
		}
		again, err := ParseBundlePEM(b.PEM())
		if err != nil || !again.equal(b) {
			t.Fatalf("bundle PEM round trip: %v", err)
		}
	})
}

func FuzzValidateDER(f *testing.F) {
	v, err := NewValidator(fuzzCA.Bundle(), []string{"example.org"})
	if err != nil {
		f.Fatal(err)
	}
	svid, err := fuzzCA.Issue(MustParseID(idA), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	leaf := svid.Leaf().Raw
	f.Add(leaf, []byte(nil))
	f.Add(leaf, fuzzCA.Certificate().Raw)
	f.Add(leaf[:len(leaf)-1], []byte(nil))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		chain := [][]byte{a}
		if len(b) > 0 {
			chain = append(chain, b)
		}
		id, err := v.ValidateDER(chain, UsageMLS, time.Time{})
		if err != nil {
			if Reason(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			if !id.IsZero() {
				t.Fatal("id returned with an error")
			}
			return
		}
		// Only certificates the CA really issued can pass.
		if id.TrustDomain() != "example.org" {
			t.Fatalf("accepted %s", id)
		}
		if _, err := v.ValidateMLSCredential(chain, nil, time.Time{}); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("nil signature key: %v", err)
		}
	})
}
