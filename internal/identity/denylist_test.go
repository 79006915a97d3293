package identity

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseDenyList(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	fpColons := strings.ToUpper(strings.Repeat("ab:", 31) + "ab")
	text := "# revoked\n\n" + idB + "   # left the company\n" +
		"serial:00:3F:a2\n" +
		"sha256:" + fp + "\n" +
		"SHA256:" + fpColons + "\n" + // same fingerprint
		"  \t\n"
	d, err := ParseDenyList([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"serial:3fa2", "sha256:" + fp, idB}
	slices.Sort(want)
	if got := d.Entries(); !slices.Equal(got, want) {
		t.Errorf("Entries = %v; want %v", got, want)
	}
	if d.Len() != 3 {
		t.Errorf("Len = %d; want 3", d.Len())
	}
	if !d.DeniesID(MustParseID(idB)) || d.DeniesID(MustParseID(idA)) {
		t.Error("DeniesID wrong")
	}
	// Re-parsing the canonical form gives the same list.
	again, err := ParseDenyList([]byte(strings.Join(d.Entries(), "\n")))
	if err != nil || !slices.Equal(again.Entries(), d.Entries()) {
		t.Errorf("canonical round trip: %v %v", again.Entries(), err)
	}
}

func TestParseDenyListErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"example.org/a", "line 1"},
		{"\nspiffe://example.org", "line 2"},
		{"spiffe://Example.org/a", "invalid SPIFFE id"},
		{"serial:xyz", "not hex"},
		{"serial:", "empty"},
		{"serial:" + strings.Repeat("ff", 21), "20 bytes"},
		{"sha256:abcd", "want 32 bytes"},
		{"md5:abcd", "unknown entry kind"},
		{strings.Repeat("a", maxDenyLineSize+1), "at most"},
	} {
		_, err := ParseDenyList([]byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.40q: error %v; want it to mention %q", c.text, err, c.want)
		}
	}
	if _, err := NewDenyList("serial:01\nserial:02"); err == nil {
		t.Error("entry with a line break accepted")
	}
}

func TestDenyListCheck(t *testing.T) {
	ca := newCA(t, "example.org")
	a := issue(t, ca, idA, time.Hour)
	b := issue(t, ca, idB, time.Hour)
	chainA := []*x509.Certificate{a.Leaf(), ca.Certificate()}
	idOfA := MustParseID(idA)
	for _, entry := range []string{
		idA,
		"serial:" + hex.EncodeToString(a.Leaf().SerialNumber.Bytes()),
		"sha256:" + FingerprintOf(a.Leaf()).String(),
		"sha256:" + FingerprintOf(ca.Certificate()).String(), // the issuing CA
	} {
		d, err := NewDenyList(entry)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Check(idOfA, chainA); !errors.Is(err, ErrRevoked) {
			t.Errorf("%s: Check(a) = %v; want ErrRevoked", entry, err)
		}
		if strings.HasPrefix(entry, "sha256:"+FingerprintOf(ca.Certificate()).String()) {
			continue // the CA revokes b too
		}
		if err := d.Check(MustParseID(idB), []*x509.Certificate{b.Leaf(), ca.Certificate()}); err != nil {
			t.Errorf("%s: Check(b) = %v; want nil", entry, err)
		}
	}
	var nilList *DenyList
	if err := nilList.Check(idOfA, chainA); err != nil || nilList.Len() != 0 {
		t.Error("nil list denies")
	}
	zero, _ := NewDenyList("serial:00")
	if err := zero.Check(idOfA, []*x509.Certificate{{SerialNumber: big.NewInt(0)}}); !errors.Is(err, ErrRevoked) {
		t.Errorf("serial 0: %v", err)
	}
	m := zero.Merge(nil).Merge(must(NewDenyList(idA, "serial:00")))
	if m.Len() != 2 {
		t.Errorf("merged Len = %d; want 2", m.Len())
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func FuzzParseDenyList(f *testing.F) {
	for _, s := range []string{
		"spiffe://example.org/ns/a/sa/b\nserial:01:02\nsha256:" + strings.Repeat("00", 32),
		"# c\n\n  serial:FF # x",
		"sha256:zz", "spiffe://x", "a:b:c", "\r\n\r\n", "serial::::",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDenyList(data)
		if err != nil {
			return
		}
		// The canonical form parses back to the same list.
		entries := d.Entries()
		if len(entries) != d.Len() {
			t.Fatalf("Entries %d vs Len %d", len(entries), d.Len())
		}
		again, err := NewDenyList(entries...)
		if err != nil {
			t.Fatalf("canonical entries do not parse: %v", err)
		}
		if !slices.Equal(again.Entries(), entries) {
			t.Fatalf("canonical round trip %v -> %v", entries, again.Entries())
		}
		_ = d.Check(MustParseID(idA), []*x509.Certificate{{SerialNumber: big.NewInt(1), Raw: data}})
	})
}
