package names

import (
	"errors"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	seg63 := strings.Repeat("a", 63)
	good := []string{
		"acme/prod/search",
		"acme/prod/search/i-1",
		"a/b/c",
		"0/9/z/x",
		"a-b/c_d/e.f/g1",
		seg63 + "/" + seg63 + "/" + seg63 + "/" + seg63,
	}
	for _, s := range good {
		if err := Validate(s); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", s, err)
		}
	}
	bad := map[string]string{
		"":                        "empty",
		"a/b":                     "segments",
		"a/b/c/d/e":               "segments",
		"a//c":                    "segment 2 is empty",
		"a/b/c/":                  "segment 4 is empty",
		"/a/b/c":                  "segment 1 is empty",
		"A/b/c":                   "byte 'A'",
		"a/b/c d":                 "byte ' '",
		"a/-b/c":                  "start and end",
		"a/b-/c":                  "start and end",
		"a/b/.c":                  "start and end",
		"a/b/c/d_":                "start and end",
		"a/b/" + seg63 + "a":      "64 bytes",
		"a/b/c\x00":               "byte",
		"a/b/é":                   "byte",
		strings.Repeat("a/", 200): "bytes long",
	}
	for s, want := range bad {
		err := Validate(s)
		if err == nil {
			t.Errorf("Validate(%q) = nil, want error", s)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%q) error %v does not wrap ErrInvalid", s, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%q) = %q, want it to mention %q", s, err, want)
		}
		if Valid(s) || ValidBytes([]byte(s)) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}

func TestParse(t *testing.T) {
	n, err := Parse("acme/prod/search/i-1")
	if err != nil {
		t.Fatal(err)
	}
	if n.Org != "acme" || n.Namespace != "prod" || n.Service != "search" || n.Instance != "i-1" {
		t.Fatalf("Parse = %+v", n)
	}
	if !n.IsInstance() || n.ServiceName() != "acme/prod/search" || n.String() != "acme/prod/search/i-1" {
		t.Fatalf("accessors wrong: %+v", n)
	}
	s, err := Parse("acme/prod/search")
	if err != nil || s.IsInstance() || s.String() != "acme/prod/search" {
		t.Fatalf("Parse service = %+v, %v", s, err)
	}
	if _, err := Parse("acme/prod"); err == nil {
		t.Fatal("Parse of 2 segments succeeded")
	}
}

func TestValidDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if Validate("acme/prod/search/instance-1") != nil {
			t.Fatal("invalid")
		}
	})
	if allocs != 0 {
		t.Fatalf("Validate allocates %.0f times", allocs)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"acme/prod/search", "a/b/c/d", "", "a//b", "A/b/c", "a/b/c/d/e", "a-/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if (err == nil) != Valid(s) || Valid(s) != ValidBytes([]byte(s)) {
			t.Fatalf("Parse and Valid disagree on %q: %v", s, err)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if n.String() != s {
			t.Fatalf("round trip %q -> %q", s, n.String())
		}
		if !Valid(n.ServiceName()) {
			t.Fatalf("service name of %q invalid", s)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	for b.Loop() {
		_ = Validate("acme/prod/search/instance-1")
	}
}
