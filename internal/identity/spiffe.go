package identity

import (
	"crypto/x509"
	"fmt"
	"strings"
)

// Limits of the SPIFFE standard.
const (
	maxIDLength          = 2048
	maxTrustDomainLength = 255
)

// ID is a SPIFFE id: spiffe://<trust-domain><path>. The zero ID is invalid
// (IsZero). IDs are comparable and may be map keys.
type ID struct {
	td   string
	path string
}

// ParseID parses and validates a SPIFFE id under the rules of the SPIFFE
// standard: the scheme "spiffe" in lower case, a trust domain of lower-case
// letters, digits, '.', '-' and '_' (no port, no user info, at most 255
// bytes), an optional path of '/'-separated non-empty segments of letters,
// digits, '.', '-' and '_' other than "." and "..", no trailing '/', no
// query or fragment, at most 2048 bytes in all.
func ParseID(s string) (ID, error) {
	const scheme = "spiffe://"
	if len(s) > maxIDLength {
		return ID{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidID, maxIDLength)
	}
	if !strings.HasPrefix(s, scheme) {
		return ID{}, fmt.Errorf("%w %q: must start with %s", ErrInvalidID, truncate(s), scheme)
	}
	rest := s[len(scheme):]
	td, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		td, path = rest[:i], rest[i:]
	}
	if err := checkTrustDomain(td); err != nil {
		return ID{}, fmt.Errorf("%w %q: %v", ErrInvalidID, truncate(s), err)
	}
	if err := checkPath(path); err != nil {
		return ID{}, fmt.Errorf("%w %q: %v", ErrInvalidID, truncate(s), err)
	}
	return ID{td: td, path: path}, nil
}

// MustParseID is ParseID for constants in tests and examples; it panics on
// an invalid id.
func MustParseID(s string) ID {
	id, err := ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// NewWorkloadID returns spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>,
// the form of a Kubernetes workload.
func NewWorkloadID(trustDomain, namespace, serviceAccount string) (ID, error) {
	return ParseID("spiffe://" + trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount)
}

// TrustDomainID returns spiffe://<trustDomain> (the id of a trust domain,
// with an empty path) after checking the name.
func TrustDomainID(trustDomain string) (ID, error) {
	if err := checkTrustDomain(trustDomain); err != nil {
		return ID{}, fmt.Errorf("%w: trust domain %q: %v", ErrInvalidID, truncate(trustDomain), err)
	}
	return ID{td: trustDomain}, nil
}

// String returns the id in URI form, or "" for the zero ID.
func (id ID) String() string {
	if id.td == "" {
		return ""
	}
	return "spiffe://" + id.td + id.path
}

// TrustDomain returns the trust domain name (without scheme).
func (id ID) TrustDomain() string { return id.td }

// Path returns the path, "" or starting with '/'.
func (id ID) Path() string { return id.path }

// IsZero reports whether id is the zero (invalid) ID.
func (id ID) IsZero() bool { return id.td == "" }

// Workload returns the namespace and service account of an id of the form
// spiffe://<td>/ns/<namespace>/sa/<service-account>; ok is false otherwise.
func (id ID) Workload() (namespace, serviceAccount string, ok bool) {
	seg := strings.Split(id.path, "/")
	// "/ns/a/sa/b" splits into "", "ns", "a", "sa", "b".
	if len(seg) != 5 || seg[0] != "" || seg[1] != "ns" || seg[3] != "sa" {
		return "", "", false
	}
	return seg[2], seg[4], true
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (with ParseID's rules).
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// IDFromCertificate returns the SPIFFE id of an X.509 SVID: the certificate
// must carry exactly one URI SAN, a spiffe:// URI with a non-empty path.
// Errors wrap ErrNoSPIFFEID.
func IDFromCertificate(cert *x509.Certificate) (ID, error) {
	if cert == nil {
		return ID{}, fmt.Errorf("%w: no certificate", ErrNoSPIFFEID)
	}
	switch len(cert.URIs) {
	case 0:
		return ID{}, fmt.Errorf("%w: certificate serial %s has no URI SAN", ErrNoSPIFFEID, serialHex(cert))
	case 1:
	default:
		return ID{}, fmt.Errorf("%w: certificate serial %s has %d URI SANs; an SVID has exactly one", ErrNoSPIFFEID, serialHex(cert), len(cert.URIs))
	}
	id, err := ParseID(cert.URIs[0].String())
	if err != nil {
		return ID{}, fmt.Errorf("%w: certificate serial %s: %w", ErrNoSPIFFEID, serialHex(cert), err)
	}
	if id.path == "" {
		return ID{}, fmt.Errorf("%w: certificate serial %s: %s names a trust domain, not a workload", ErrNoSPIFFEID, serialHex(cert), id)
	}
	return id, nil
}

func checkTrustDomain(td string) error {
	if td == "" {
		return fmt.Errorf("empty trust domain")
	}
	if len(td) > maxTrustDomainLength {
		return fmt.Errorf("trust domain longer than %d bytes", maxTrustDomainLength)
	}
	for i := 0; i < len(td); i++ {
		b := td[i]
		switch {
		case b >= 'a' && b <= 'z', b >= '0' && b <= '9', b == '.', b == '-', b == '_':
		case b >= 'A' && b <= 'Z':
			return fmt.Errorf("trust domain must be lower case")
		case b == ':':
			return fmt.Errorf("trust domain must not carry a port")
		case b == '@':
			return fmt.Errorf("trust domain must not carry user info")
		default:
			return fmt.Errorf("trust domain has a character outside a-z 0-9 . - _ at byte %d", i)
		}
	}
	return nil
}

func checkPath(p string) error {
	if p == "" {
		return nil
	}
	if p == "/" || strings.HasSuffix(p, "/") {
		return fmt.Errorf("path must not end with '/'")
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("path has an empty segment")
		case ".", "..":
			return fmt.Errorf("path has a %q segment", seg)
		}
		for i := 0; i < len(seg); i++ {
			b := seg[i]
			switch {
			case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '.', b == '-', b == '_':
			case b == '?' || b == '#':
				return fmt.Errorf("query and fragment are not allowed")
			default:
				return fmt.Errorf("path has a character outside A-Z a-z 0-9 . - _")
			}
		}
	}
	return nil
}

// truncate bounds user input quoted in error messages.
func truncate(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
