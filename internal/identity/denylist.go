package identity

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// Deny list limits.
const (
	maxDenyEntries  = 100000
	maxDenyLineSize = 4096
	maxDenyFileSize = 4 << 20
)

// DenyList is an immutable set of revoked credentials. Its text form has one
// entry a line; blank lines and text after '#' are ignored:
//
//	spiffe://example.org/ns/shop/sa/old-agent     # a SPIFFE id
//	serial:3f:a2:09                               # a certificate serial, hex
//	sha256:9f86d081884c7d65...                    # a certificate's SHA-256 fingerprint, hex
//
// Hex may contain ':' separators and upper or lower case. A serial or
// fingerprint matches any certificate of a peer's verified chain (so an
// intermediate CA can be revoked); a SPIFFE id matches the leaf's id.
type DenyList struct {
	ids     map[ID]struct{}
	serials [][]byte // minimal big-endian bytes
	fps     []Fingerprint
}

// ParseDenyList parses the text form. The error names the line.
func ParseDenyList(data []byte) (*DenyList, error) {
	if len(data) > maxDenyFileSize {
		return nil, fmt.Errorf("deny list is %d bytes; at most %d", len(data), maxDenyFileSize)
	}
	d := &DenyList{ids: map[ID]struct{}{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 512), maxDenyLineSize)
	line := 0
	for sc.Scan() {
		line++
		if err := d.add(sc.Text()); err != nil {
			return nil, fmt.Errorf("deny list line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("deny list after line %d: %w (lines are at most %d bytes)", line, err, maxDenyLineSize)
	}
	return d, nil
}

// NewDenyList parses entries, one per element, in the text form.
func NewDenyList(entries ...string) (*DenyList, error) {
	d := &DenyList{ids: map[ID]struct{}{}}
	for i, e := range entries {
		if strings.ContainsAny(e, "\r\n") {
			return nil, fmt.Errorf("deny entry %d: contains a line break", i+1)
		}
		if err := d.add(e); err != nil {
			return nil, fmt.Errorf("deny entry %d: %w", i+1, err)
		}
	}
	return d, nil
}

func (d *DenyList) add(raw string) error {
	s := raw
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if d.Len() >= maxDenyEntries {
		return fmt.Errorf("more than %d entries", maxDenyEntries)
	}
	kind, val, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%q: want spiffe://..., serial:<hex> or sha256:<hex>", truncate(s))
	}
	switch strings.ToLower(kind) {
	case "spiffe":
		id, err := ParseID(s)
		if err != nil {
			return err
		}
		if id.Path() == "" {
			return fmt.Errorf("%q names a whole trust domain; deny workload ids (remove the domain from AGW_IDENTITY_TRUST_DOMAINS instead)", truncate(s))
		}
		d.ids[id] = struct{}{}
	case "serial":
		b, err := parseHex(val)
		if err != nil {
			return fmt.Errorf("serial %q: %w", truncate(val), err)
		}
		if len(b) > 20 {
			return fmt.Errorf("serial %q: longer than the 20 bytes RFC 5280 allows", truncate(val))
		}
		n := new(big.Int).SetBytes(b).Bytes()
		if len(n) == 0 {
			n = []byte{0}
		}
		if !slices.ContainsFunc(d.serials, func(x []byte) bool { return bytes.Equal(x, n) }) {
			d.serials = append(d.serials, n)
		}
	case "sha256":
		b, err := parseHex(val)
		if err != nil {
			return fmt.Errorf("sha256 %q: %w", truncate(val), err)
		}
		if len(b) != len(Fingerprint{}) {
			return fmt.Errorf("sha256 %q: want %d bytes (%d hex digits), got %d bytes", truncate(val), len(Fingerprint{}), 2*len(Fingerprint{}), len(b))
		}
		f := Fingerprint(b)
		if !slices.Contains(d.fps, f) {
			d.fps = append(d.fps, f)
		}
	default:
		return fmt.Errorf("%q: unknown entry kind %q; want spiffe://..., serial:<hex> or sha256:<hex>", truncate(s), truncate(kind))
	}
	return nil
}

func parseHex(s string) ([]byte, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	if s == "" {
		return nil, fmt.Errorf("empty")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex")
	}
	return b, nil
}

// Len returns the number of entries.
func (d *DenyList) Len() int {
	if d == nil {
		return 0
	}
	return len(d.ids) + len(d.serials) + len(d.fps)
}

// Merge returns a list holding the entries of d and o (either may be nil).
func (d *DenyList) Merge(o *DenyList) *DenyList {
	m := &DenyList{ids: map[ID]struct{}{}}
	for _, l := range []*DenyList{d, o} {
		if l == nil {
			continue
		}
		for id := range l.ids {
			m.ids[id] = struct{}{}
		}
		for _, s := range l.serials {
			if !slices.ContainsFunc(m.serials, func(x []byte) bool { return bytes.Equal(x, s) }) {
				m.serials = append(m.serials, s)
			}
		}
		for _, f := range l.fps {
			if !slices.Contains(m.fps, f) {
				m.fps = append(m.fps, f)
			}
		}
	}
	return m
}

// Entries returns the entries in canonical text form, sorted.
func (d *DenyList) Entries() []string {
	if d == nil {
		return nil
	}
	var out []string
	for id := range d.ids {
		out = append(out, id.String())
	}
	for _, s := range d.serials {
		out = append(out, "serial:"+hex.EncodeToString(s))
	}
	for _, f := range d.fps {
		out = append(out, "sha256:"+f.String())
	}
	slices.Sort(out)
	return out
}

// DeniesID reports whether id is on the list.
func (d *DenyList) DeniesID(id ID) bool {
	if d == nil {
		return false
	}
	_, ok := d.ids[id]
	return ok
}

// Check returns an error wrapping ErrRevoked if id or a certificate of chain
// (by serial or SHA-256 fingerprint) is on the list. Serials and
// fingerprints are compared in constant time against every entry.
func (d *DenyList) Check(id ID, chain []*x509.Certificate) error {
	if d == nil {
		return nil
	}
	if d.DeniesID(id) {
		return fmt.Errorf("%w: SPIFFE id %s is denied", ErrRevoked, id)
	}
	for _, c := range chain {
		fp := FingerprintOf(c)
		hit := 0
		for i := range d.fps {
			hit |= subtle.ConstantTimeCompare(fp[:], d.fps[i][:])
		}
		if hit == 1 {
			return fmt.Errorf("%w: certificate sha256:%s (%s) is denied", ErrRevoked, fp, idOrSubject(c))
		}
		if c.SerialNumber == nil {
			continue
		}
		sn := c.SerialNumber.Bytes()
		if len(sn) == 0 {
			sn = []byte{0}
		}
		hit = 0
		for i := range d.serials {
			hit |= subtle.ConstantTimeCompare(sn, d.serials[i])
		}
		if hit == 1 {
			return fmt.Errorf("%w: certificate serial %s (%s) is denied", ErrRevoked, hex.EncodeToString(sn), idOrSubject(c))
		}
	}
	return nil
}

func idOrSubject(c *x509.Certificate) string {
	if len(c.URIs) == 1 {
		return c.URIs[0].String()
	}
	return "subject " + c.Subject.String()
}
