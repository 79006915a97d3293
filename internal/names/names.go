// Package names parses and validates AGP names.
//
// An AGP name is either a service name, org/namespace/service, which stands
// for every instance of an agent type, or an instance name,
// org/namespace/service/instance, which stands for one instance. Topics are
// names too.
//
// The rule is strict and ASCII only, so that names are safe as map keys,
// metric labels, xDS resource names and file names:
//
//   - a name has 3 or 4 segments separated by '/';
//   - each segment is 1 to 63 bytes long;
//   - each segment starts and ends with a lowercase letter or digit [a-z0-9];
//   - inner bytes may also be '-', '_' or '.';
//   - hence a whole name is at most 4*63+3 = 255 bytes.
//
// Validate is the allocation-free fast path used on every message; Parse
// splits a valid name into its parts.
package names

import (
	"errors"
	"fmt"
	"strings"
)

// Limits of the name rule.
const (
	MaxSegmentLen = 63
	MaxNameLen    = 4*MaxSegmentLen + 3
)

// ErrInvalid is wrapped by every validation error, so callers can test with
// errors.Is(err, names.ErrInvalid).
var ErrInvalid = errors.New("invalid AGP name")

// Name is a parsed AGP name. Instance is empty for a service name.
type Name struct {
	Org       string
	Namespace string
	Service   string
	Instance  string
}

// IsInstance reports whether n names one instance.
func (n Name) IsInstance() bool { return n.Instance != "" }

// ServiceName returns org/namespace/service, dropping any instance.
func (n Name) ServiceName() string {
	return n.Org + "/" + n.Namespace + "/" + n.Service
}

// String returns the canonical text of n.
func (n Name) String() string {
	if n.Instance == "" {
		return n.ServiceName()
	}
	return n.ServiceName() + "/" + n.Instance
}

// byte classes: 1 = may start/end a segment, 2 = inner only.
var class = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	t['-'], t['_'], t['.'] = 2, 2, 2
	return t
}()

// Valid reports whether s is a valid name. It does not allocate.
func Valid(s string) bool { return valid(s) }

// ValidBytes is Valid for a name held in bytes, such as a field of an
// undecoded protobuf message.
func ValidBytes(b []byte) bool { return valid(b) }

func valid[T string | []byte](s T) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	segs, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '/' {
			if class[s[i]] == 0 {
				return false
			}
			continue
		}
		// s[start:i] is a segment.
		n := i - start
		if n == 0 || n > MaxSegmentLen || class[s[start]] != 1 || class[s[i-1]] != 1 {
			return false
		}
		segs++
		if segs > 4 {
			return false
		}
		start = i + 1
	}
	return segs >= 3
}

// Validate returns nil if s is a valid name, or an error wrapping ErrInvalid
// that says what is wrong. The valid case does not allocate.
func Validate(s string) error {
	if Valid(s) {
		return nil
	}
	return explain(s)
}

// Parse validates s and splits it into its parts.
func Parse(s string) (Name, error) {
	if !Valid(s) {
		return Name{}, explain(s)
	}
	parts := strings.Split(s, "/")
	n := Name{Org: parts[0], Namespace: parts[1], Service: parts[2]}
	if len(parts) == 4 {
		n.Instance = parts[3]
	}
	return n, nil
}

// MustParse is Parse for constants in tests and examples; it panics on an
// invalid name.
func MustParse(s string) Name {
	n, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return n
}

// explain is the slow path: it finds the first problem in an invalid name.
func explain(s string) error {
	if len(s) == 0 {
		return fmt.Errorf("%w: empty; use org/namespace/service or org/namespace/service/instance", ErrInvalid)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalid, len(s), MaxNameLen)
	}
	q := quote(s)
	parts := strings.Split(s, "/")
	if len(parts) < 3 || len(parts) > 4 {
		return fmt.Errorf("%w %s: has %d segments, want 3 (org/namespace/service) or 4 (org/namespace/service/instance)", ErrInvalid, q, len(parts))
	}
	for i, p := range parts {
		switch {
		case len(p) == 0:
			return fmt.Errorf("%w %s: segment %d is empty", ErrInvalid, q, i+1)
		case len(p) > MaxSegmentLen:
			return fmt.Errorf("%w %s: segment %d is %d bytes long, at most %d allowed", ErrInvalid, q, i+1, len(p), MaxSegmentLen)
		}
		for j := 0; j < len(p); j++ {
			if class[p[j]] == 0 {
				return fmt.Errorf("%w %s: segment %d has byte %q; allowed are a-z, 0-9 and inner '-', '_', '.'", ErrInvalid, q, i+1, p[j])
			}
		}
		if class[p[0]] != 1 || class[p[len(p)-1]] != 1 {
			return fmt.Errorf("%w %s: segment %d must start and end with a-z or 0-9", ErrInvalid, q, i+1)
		}
	}
	return fmt.Errorf("%w %s", ErrInvalid, q) // unreachable for consistent rules
}

// quote shortens and quotes s for error messages.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
