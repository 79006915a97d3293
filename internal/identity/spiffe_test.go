package identity

import (
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseIDValid(t *testing.T) {
	for _, c := range []struct {
		in, td, path string
	}{
		{"spiffe://example.org", "example.org", ""},
		{"spiffe://example.org/ns/shop/sa/checkout", "example.org", "/ns/shop/sa/checkout"},
		{"spiffe://a-b_c.d9/A.b-C_d/0", "a-b_c.d9", "/A.b-C_d/0"},
		{"spiffe://td/..a/a..", "td", "/..a/a.."},
	} {
		id, err := ParseID(c.in)
		if err != nil {
			t.Errorf("ParseID(%q): %v", c.in, err)
			continue
		}
		if id.TrustDomain() != c.td || id.Path() != c.path || id.String() != c.in || id.IsZero() {
			t.Errorf("ParseID(%q) = td %q path %q string %q", c.in, id.TrustDomain(), id.Path(), id.String())
		}
	}
}

func TestParseIDInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"spiffe://",
		"spiffe:///path",
		"SPIFFE://example.org/a",
		"https://example.org/a",
		"spiffe:/example.org/a",
		"spiffe://Example.org/a",
		"spiffe://example.org:8080/a",
		"spiffe://user@example.org/a",
		"spiffe://example.org/",
		"spiffe://example.org/a/",
		"spiffe://example.org//a",
		"spiffe://example.org/./a",
		"spiffe://example.org/a/..",
		"spiffe://example.org/a?x=1",
		"spiffe://example.org/a#frag",
		"spiffe://example.org/a%20b",
		"spiffe://example.org/a b",
		"spiffe://exa mple.org/a",
		"spiffe://" + strings.Repeat("a", 256) + "/x",
		"spiffe://example.org/" + strings.Repeat("a", 2048),
	} {
		if id, err := ParseID(in); err == nil {
			t.Errorf("ParseID(%q) = %q; want an error", in, id)
		} else if !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseID(%q): %v does not wrap ErrInvalidID", in, err)
		}
	}
}

func TestWorkloadID(t *testing.T) {
	id, err := NewWorkloadID("example.org", "shop", "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != "spiffe://example.org/ns/shop/sa/checkout" {
		t.Fatalf("got %s", id)
	}
	ns, sa, ok := id.Workload()
	if !ok || ns != "shop" || sa != "checkout" {
		t.Errorf("Workload() = %q %q %v", ns, sa, ok)
	}
	for _, s := range []string{"spiffe://example.org/ns/shop", "spiffe://example.org/ns/a/sa/b/c", "spiffe://example.org/x/a/sa/b", "spiffe://example.org"} {
		if _, _, ok := MustParseID(s).Workload(); ok {
			t.Errorf("%s: Workload ok; want not a workload form", s)
		}
	}
	if _, err := NewWorkloadID("example.org", "a/b", "c"); err != nil {
		// "a/b" just makes a longer path; still a valid SPIFFE id.
		t.Errorf("NewWorkloadID with a slash: %v", err)
	}
	if _, err := NewWorkloadID("example.org", "", "c"); err == nil {
		t.Error("empty namespace accepted")
	}
	var back ID
	text, _ := id.MarshalText()
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Errorf("text round trip: %v %v", back, err)
	}
	if err := back.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText accepted garbage")
	}
}

func TestIDFromCertificate(t *testing.T) {
	ca := newCA(t, "example.org")
	svid := issue(t, ca, idA, time.Hour)
	id, err := IDFromCertificate(svid.Leaf())
	if err != nil || id.String() != idA {
		t.Fatalf("got %q, %v", id, err)
	}
	mk := func(uris ...string) *x509.Certificate {
		c := &x509.Certificate{}
		for _, u := range uris {
			pu, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			c.URIs = append(c.URIs, pu)
		}
		return c
	}
	for name, c := range map[string]*x509.Certificate{
		"none":         mk(),
		"two":          mk(idA, idB),
		"https":        mk("https://example.org/a"),
		"trust domain": mk("spiffe://example.org"),
		"bad path":     mk("spiffe://example.org/a/"),
		"nil":          nil,
	} {
		if _, err := IDFromCertificate(c); !errors.Is(err, ErrNoSPIFFEID) {
			t.Errorf("%s: %v; want ErrNoSPIFFEID", name, err)
		}
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"spiffe://example.org/ns/a/sa/b", "spiffe://td", "spiffe://td/", "spiffe://td/a/../b", "SPIFFE://x/y", "spiffe://a:1/b", "spiffe://x/%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidID) {
				t.Fatalf("error %v does not wrap ErrInvalidID", err)
			}
			if len(s) > 1000 && strings.Contains(err.Error(), s) {
				t.Fatal("error quotes unbounded input")
			}
			return
		}
		if id.String() != s {
			t.Fatalf("round trip %q -> %q", s, id)
		}
		again, err := ParseID(id.String())
		if err != nil || again != id {
			t.Fatalf("reparse %q: %v", id, err)
		}
		// Every valid id is a valid URL whose parts agree.
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("valid id %q is not a URL: %v", s, err)
		}
		if u.Scheme != "spiffe" || u.Host != id.TrustDomain() || u.Path != id.Path() || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			t.Fatalf("%q: URL parts %q %q %q disagree with %q %q", s, u.Scheme, u.Host, u.Path, id.TrustDomain(), id.Path())
		}
	})
}
