// Package suite implements the MLS cipher suites of RFC 9420 §5.1 and the
// labelled cryptographic operations built on them (§5.1.2, §5.1.3, §5.2,
// §8): hashing, HKDF with MLS labels, HMAC, the suite's AEAD, HPKE base mode
// (RFC 9180) and signatures.
//
// Supported suites are 1 (X25519, AES-128-GCM, SHA-256, Ed25519),
// 2 (P-256, AES-128-GCM, SHA-256, ECDSA P-256), 3 (X25519,
// ChaCha20-Poly1305, SHA-256, Ed25519), 5 (P-521, AES-256-GCM, SHA-512,
// ECDSA P-521) and 7 (P-384, AES-256-GCM, SHA-384, ECDSA P-384). Suites 4
// and 6 use X448/Ed448, which Go's standard library does not provide; Get
// reports them (and unknown ids) with ErrUnsupported.
//
// Keys cross the API as bytes in the encodings MLS puts on the wire and in
// the IETF test vectors: HPKE public keys are SerializePublicKey output and
// private keys SerializePrivateKey output (RFC 9180 §7.1.1/§7.1.2);
// signature public keys are the raw Ed25519 key or the uncompressed ECDSA
// point, signature private keys are the Ed25519 seed or the big-endian ECDSA
// scalar. ECDSA signatures are DER-encoded (as in TLS); Ed25519 signatures
// are the raw 64 bytes.
//
// Functions taking a label add the "MLS 1.0 " prefix themselves
// (ExpandWithLabel, DeriveSecret, DeriveTreeSecret, SignWithLabel,
// VerifyWithLabel, EncryptWithLabel, DecryptWithLabel). RefHash is the
// exception, as in the RFC: its label is used verbatim, so callers pass the
// full label (see KeyPackageRef and ProposalRef).
//
// AES-GCM, HPKE, ECDH, ECDSA, Ed25519 and SHA-2 come from Go's standard
// library. ChaCha20-Poly1305 (suite 3's AEAD) is implemented here from RFC
// 8439, because the standard library uses it internally but does not export
// it; HPKE in suite 3 still uses the standard library's copy.
//
// A *Suite is immutable and safe for concurrent use.
package suite

import (
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
)

// ID is an MLS cipher suite identifier (RFC 9420 §17.1).
type ID uint16

// The cipher suites of RFC 9420 §17.1.
const (
	MLS128DHKEMX25519AES128GCMSHA256Ed25519        ID = 1
	MLS128DHKEMP256AES128GCMSHA256P256             ID = 2
	MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519 ID = 3
	MLS256DHKEMX448AES256GCMSHA512Ed448            ID = 4
	MLS256DHKEMP521AES256GCMSHA512P521             ID = 5
	MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448     ID = 6
	MLS256DHKEMP384AES256GCMSHA384P384             ID = 7
)

// String returns the RFC name of the suite.
func (id ID) String() string {
	switch id {
	case 1:
		return "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"
	case 2:
		return "MLS_128_DHKEMP256_AES128GCM_SHA256_P256"
	case 3:
		return "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519"
	case 4:
		return "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448"
	case 5:
		return "MLS_256_DHKEMP521_AES256GCM_SHA512_P521"
	case 6:
		return "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448"
	case 7:
		return "MLS_256_DHKEMP384_AES256GCM_SHA384_P384"
	}
	return fmt.Sprintf("cipher suite 0x%04x", uint16(id))
}

// Errors. Functions wrap them with context; compare with errors.Is.
var (
	// ErrUnsupported: the cipher suite is unknown or not implemented.
	ErrUnsupported = errors.New("mls suite: unsupported cipher suite")
	// ErrVerify: a signature did not verify.
	ErrVerify = errors.New("mls suite: signature verification failed")
	// ErrDecrypt: an AEAD or HPKE ciphertext did not decrypt.
	ErrDecrypt = errors.New("mls suite: decryption failed")
	// ErrInvalidKey: a key has the wrong length or is not a valid key.
	ErrInvalidKey = errors.New("mls suite: invalid key")
	// ErrInvalidLength: a requested output length is out of range.
	ErrInvalidLength = errors.New("mls suite: invalid length")
)

type aeadKind uint8

const (
	aeadAESGCM aeadKind = iota + 1
	aeadChaCha20Poly1305
)

type sigKind uint8

const (
	sigEd25519 sigKind = iota + 1
	sigECDSA
)

type hashKind uint8

const (
	hashSHA256 hashKind = iota + 1
	hashSHA384
	hashSHA512
)

// Suite is one MLS cipher suite. Obtain it with Get.
type Suite struct {
	id ID

	hash    hashKind
	newHash func() hash.Hash
	nh      int

	aead aeadKind
	nk   int
	nn   int

	kem      hpke.KEM
	hpkeKDF  hpke.KDF
	hpkeAEAD hpke.AEAD
	dh       ecdh.Curve
	// nistPrivSz is the length of a NIST-curve HPKE private key (the
	// big-endian scalar); 0 for X25519, whose keys are not numbers in
	// big-endian form and are taken only at their exact size.
	nistPrivSz int

	sig      sigKind
	curve    elliptic.Curve // ECDSA only
	scalarSz int            // ECDSA private scalar length
}

var suites = map[ID]*Suite{
	1: {
		id: 1, hash: hashSHA256, newHash: sha256.New, nh: 32,
		aead: aeadAESGCM, nk: 16, nn: 12,
		kem: hpke.DHKEM(ecdh.X25519()), hpkeKDF: hpke.HKDFSHA256(), hpkeAEAD: hpke.AES128GCM(), dh: ecdh.X25519(),
		sig: sigEd25519,
	},
	2: {
		id: 2, hash: hashSHA256, newHash: sha256.New, nh: 32,
		aead: aeadAESGCM, nk: 16, nn: 12,
		kem: hpke.DHKEM(ecdh.P256()), hpkeKDF: hpke.HKDFSHA256(), hpkeAEAD: hpke.AES128GCM(), dh: ecdh.P256(), nistPrivSz: 32,
		sig: sigECDSA, curve: elliptic.P256(), scalarSz: 32,
	},
	3: {
		id: 3, hash: hashSHA256, newHash: sha256.New, nh: 32,
		aead: aeadChaCha20Poly1305, nk: 32, nn: 12,
		kem: hpke.DHKEM(ecdh.X25519()), hpkeKDF: hpke.HKDFSHA256(), hpkeAEAD: hpke.ChaCha20Poly1305(), dh: ecdh.X25519(),
		sig: sigEd25519,
	},
	5: {
		id: 5, hash: hashSHA512, newHash: sha512.New, nh: 64,
		aead: aeadAESGCM, nk: 32, nn: 12,
		kem: hpke.DHKEM(ecdh.P521()), hpkeKDF: hpke.HKDFSHA512(), hpkeAEAD: hpke.AES256GCM(), dh: ecdh.P521(), nistPrivSz: 66,
		sig: sigECDSA, curve: elliptic.P521(), scalarSz: 66,
	},
	7: {
		id: 7, hash: hashSHA384, newHash: sha512.New384, nh: 48,
		aead: aeadAESGCM, nk: 32, nn: 12,
		kem: hpke.DHKEM(ecdh.P384()), hpkeKDF: hpke.HKDFSHA384(), hpkeAEAD: hpke.AES256GCM(), dh: ecdh.P384(), nistPrivSz: 48,
		sig: sigECDSA, curve: elliptic.P384(), scalarSz: 48,
	},
}

// Get returns the suite with the given id. Suites 4 and 6 (X448/Ed448) and
// unknown ids give an error wrapping ErrUnsupported.
func Get(id ID) (*Suite, error) {
	if s, ok := suites[id]; ok {
		return s, nil
	}
	switch id {
	case 4, 6:
		return nil, fmt.Errorf("%w: %s (%d) needs X448/Ed448, which Go's standard library does not implement", ErrUnsupported, id, uint16(id))
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, id)
}

// Supported returns the ids of the implemented suites in ascending order.
func Supported() []ID { return []ID{1, 2, 3, 5, 7} }

// ID returns the suite's identifier.
func (s *Suite) ID() ID { return s.id }

// Nh returns the output length of the suite's hash and KDF.
func (s *Suite) Nh() int { return s.nh }

// AEADKeySize returns Nk, the AEAD key length.
func (s *Suite) AEADKeySize() int { return s.nk }

// AEADNonceSize returns Nn, the AEAD nonce length.
func (s *Suite) AEADNonceSize() int { return s.nn }

// AEADOverhead returns the AEAD tag length.
func (s *Suite) AEADOverhead() int { return 16 }

// String returns the RFC name of the suite.
func (s *Suite) String() string { return s.id.String() }
