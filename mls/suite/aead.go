package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
)

func (s *Suite) newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != s.nk {
		return nil, fmt.Errorf("%w: AEAD key is %d bytes, %s needs %d", ErrInvalidKey, len(key), s.id, s.nk)
	}
	if s.aead == aeadChaCha20Poly1305 {
		return newChaCha20Poly1305(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return cipher.NewGCM(b)
}

// Seal encrypts and authenticates plaintext with the suite's AEAD and
// returns ciphertext||tag in a new slice.
func (s *Suite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	return s.SealAppend(make([]byte, 0, len(plaintext)+s.AEADOverhead()), key, nonce, aad, plaintext)
}

// SealAppend encrypts and authenticates plaintext and appends
// ciphertext||tag to dst, with the aliasing rules of cipher.AEAD.Seal: to
// encrypt in place pass plaintext[:0] as dst (with room for the tag after
// plaintext); otherwise dst's spare capacity must not overlap plaintext.
func (s *Suite) SealAppend(dst, key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := s.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != s.nn {
		return nil, fmt.Errorf("%w: AEAD nonce is %d bytes, want %d", ErrInvalidLength, len(nonce), s.nn)
	}
	return a.Seal(dst, nonce, plaintext, aad), nil
}

// Open authenticates and decrypts ciphertext||tag into a new slice. Any
// failure to authenticate gives an error wrapping ErrDecrypt.
func (s *Suite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	return s.OpenAppend(nil, key, nonce, aad, ciphertext)
}

// OpenAppend authenticates ciphertext||tag and appends the plaintext to
// dst, with the aliasing rules of cipher.AEAD.Open: to decrypt in place
// pass ciphertext[:0] as dst; otherwise dst's spare capacity must not
// overlap ciphertext. After a failure the bytes of dst's spare capacity
// are unspecified. Any failure to authenticate gives an error wrapping
// ErrDecrypt.
func (s *Suite) OpenAppend(dst, key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := s.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != s.nn {
		return nil, fmt.Errorf("%w: AEAD nonce is %d bytes, want %d", ErrInvalidLength, len(nonce), s.nn)
	}
	pt, err := a.Open(dst, nonce, ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: AEAD open", ErrDecrypt)
	}
	return pt, nil
}
