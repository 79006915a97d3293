package suite

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"

	"github.com/agwproject/agw/mls/codec"
)

// labelPrefix is prepended to every MLS label (RFC 9420 §5.1.2, §5.1.3, §8).
const labelPrefix = "MLS 1.0 "

// Hash returns the suite's hash of data.
func (s *Suite) Hash(data []byte) []byte {
	switch s.hash {
	case hashSHA256:
		h := sha256.Sum256(data)
		return h[:]
	case hashSHA384:
		h := sha512.Sum384(data)
		return h[:]
	default:
		h := sha512.Sum512(data)
		return h[:]
	}
}

// Extract is HKDF-Extract(salt, ikm) with the suite's hash. An empty salt
// acts as Nh zero bytes, as RFC 5869 specifies.
func (s *Suite) Extract(salt, ikm []byte) []byte {
	return s.hmacAppend(make([]byte, 0, s.nh), salt, ikm, nil, nil)
}

// Expand is HKDF-Expand(prk, info, n) with the suite's hash. It returns nil
// if n is negative or larger than 255*Nh, the HKDF limit.
func (s *Suite) Expand(prk, info []byte, n int) []byte {
	if n < 0 || n > 255*s.nh {
		return nil
	}
	out := make([]byte, 0, n+s.nh)
	var prev []byte
	for ctr := byte(1); len(out) < n; ctr++ {
		start := len(out)
		out = s.hmacAppend(out, prk, prev, info, []byte{ctr})
		prev = out[start:]
	}
	return out[:n:n]
}

// appendLabelled appends the encoding of
//
//	struct { opaque label<V> = "MLS 1.0 " + label; opaque content<V>; }
//
// which is the tail shared by KDFLabel, SignContent and EncryptContext.
func appendLabelled(dst []byte, label string, content []byte) []byte {
	dst, _ = codec.AppendVarint(dst, len(labelPrefix)+len(label))
	dst = append(dst, labelPrefix...)
	dst = append(dst, label...)
	dst, _ = codec.AppendVarint(dst, len(content))
	return append(dst, content...)
}

func labelledLen(label string, content []byte) int {
	l := len(labelPrefix) + len(label)
	return codec.VarintLen(l) + l + codec.VarintLen(len(content)) + len(content)
}

// appendKDFLabel appends KDFLabel { uint16 length; opaque label<V>; opaque
// context<V>; } to dst.
func appendKDFLabel(dst []byte, n int, label string, context []byte) []byte {
	dst = append(dst, byte(n>>8), byte(n))
	return appendLabelled(dst, label, context)
}

// ExpandWithLabel is RFC 9420 §8: Expand(secret, KDFLabel, n) with the label
// prefixed by "MLS 1.0 ". It returns nil if n is out of range (see Expand).
func (s *Suite) ExpandWithLabel(secret []byte, label string, context []byte, n int) []byte {
	if n < 0 || n > 0xffff {
		return nil
	}
	var stack [256]byte // KDFLabel of the usual short labels and contexts, off the heap
	return s.Expand(secret, appendKDFLabel(stack[:0], n, label, context), n)
}

// DeriveSecret is ExpandWithLabel(secret, label, "", Nh).
func (s *Suite) DeriveSecret(secret []byte, label string) []byte {
	return s.ExpandWithLabel(secret, label, nil, s.nh)
}

// DeriveTreeSecret is ExpandWithLabel(secret, label, generation as uint32, n)
// (RFC 9420 §9.1).
func (s *Suite) DeriveTreeSecret(secret []byte, label string, generation uint32, n int) []byte {
	g := [4]byte{byte(generation >> 24), byte(generation >> 16), byte(generation >> 8), byte(generation)}
	return s.ExpandWithLabel(secret, label, g[:], n)
}

// RefHash is RFC 9420 §5.2: Hash(RefHashInput{label, value}). The label is
// used verbatim (no prefix is added); the RFC's labels already carry
// "MLS 1.0 ", e.g. "MLS 1.0 KeyPackage Reference".
func (s *Suite) RefHash(label string, value []byte) []byte {
	b := make([]byte, 0, codec.VarintLen(len(label))+len(label)+codec.VarintLen(len(value))+len(value))
	b, _ = codec.AppendVarint(b, len(label))
	b = append(b, label...)
	b, _ = codec.AppendVarint(b, len(value))
	b = append(b, value...)
	return s.Hash(b)
}

// KeyPackageRef is MakeKeyPackageRef (RFC 9420 §5.2) of an encoded
// KeyPackage (the MLSMessage-free KeyPackage struct).
func (s *Suite) KeyPackageRef(encodedKeyPackage []byte) []byte {
	return s.RefHash("MLS 1.0 KeyPackage Reference", encodedKeyPackage)
}

// ProposalRef is MakeProposalRef (RFC 9420 §5.2) of an encoded
// AuthenticatedContent carrying a proposal.
func (s *Suite) ProposalRef(encodedAuthenticatedContent []byte) []byte {
	return s.RefHash("MLS 1.0 Proposal Reference", encodedAuthenticatedContent)
}

// MAC returns HMAC(key, data) with the suite's hash.
func (s *Suite) MAC(key, data []byte) []byte {
	return s.hmacAppend(make([]byte, 0, s.nh), key, data, nil, nil)
}

// VerifyMAC reports whether tag is HMAC(key, data), in constant time.
func (s *Suite) VerifyMAC(key, data, tag []byte) bool {
	return hmac.Equal(s.MAC(key, data), tag)
}
