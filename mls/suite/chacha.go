package suite

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"math/bits"
)

// ChaCha20-Poly1305 (RFC 8439 §2.8). Go's standard library uses it inside
// crypto/tls and crypto/hpke but does not export it, and this module imports
// nothing outside the standard library, so suite 3 carries its own
// implementation written from RFC 8439. It is tested against the RFC's
// vectors and, for Poly1305, against a math/big reference.

const (
	chachaKeySize   = 32
	chachaNonceSize = 12
	poly1305TagSize = 16
)

var errChaChaOpen = errors.New("chacha20poly1305: message authentication failed")

type chacha20poly1305 struct {
	key [8]uint32
}

func newChaCha20Poly1305(key []byte) (cipher.AEAD, error) {
	if len(key) != chachaKeySize {
		return nil, errors.New("chacha20poly1305: key must be 32 bytes")
	}
	c := new(chacha20poly1305)
	for i := range c.key {
		c.key[i] = binary.LittleEndian.Uint32(key[4*i:])
	}
	return c, nil
}

func (c *chacha20poly1305) NonceSize() int { return chachaNonceSize }
func (c *chacha20poly1305) Overhead() int  { return poly1305TagSize }

// quarterRound is the ChaCha quarter round of RFC 8439 §2.1.
func quarterRound(a, b, c, d uint32) (uint32, uint32, uint32, uint32) {
	a += b
	d = bits.RotateLeft32(d^a, 16)
	c += d
	b = bits.RotateLeft32(b^c, 12)
	a += b
	d = bits.RotateLeft32(d^a, 8)
	c += d
	b = bits.RotateLeft32(b^c, 7)
	return a, b, c, d
}

// chachaBlock writes the 64-byte ChaCha20 block for (key, counter, nonce)
// into out (RFC 8439 §2.3).
func chachaBlock(out *[64]byte, key *[8]uint32, counter uint32, nonce *[3]uint32) {
	const c0, c1, c2, c3 = 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574
	x0, x1, x2, x3 := uint32(c0), uint32(c1), uint32(c2), uint32(c3)
	x4, x5, x6, x7 := key[0], key[1], key[2], key[3]
	x8, x9, x10, x11 := key[4], key[5], key[6], key[7]
	x12, x13, x14, x15 := counter, nonce[0], nonce[1], nonce[2]
	for range 10 {
		// Column rounds.
		x0, x4, x8, x12 = quarterRound(x0, x4, x8, x12)
		x1, x5, x9, x13 = quarterRound(x1, x5, x9, x13)
		x2, x6, x10, x14 = quarterRound(x2, x6, x10, x14)
		x3, x7, x11, x15 = quarterRound(x3, x7, x11, x15)
		// Diagonal rounds.
		x0, x5, x10, x15 = quarterRound(x0, x5, x10, x15)
		x1, x6, x11, x12 = quarterRound(x1, x6, x11, x12)
		x2, x7, x8, x13 = quarterRound(x2, x7, x8, x13)
		x3, x4, x9, x14 = quarterRound(x3, x4, x9, x14)
	}
	le := binary.LittleEndian
	le.PutUint32(out[0:], x0+c0)
	le.PutUint32(out[4:], x1+c1)
	le.PutUint32(out[8:], x2+c2)
	le.PutUint32(out[12:], x3+c3)
	le.PutUint32(out[16:], x4+key[0])
	le.PutUint32(out[20:], x5+key[1])
	le.PutUint32(out[24:], x6+key[2])
	le.PutUint32(out[28:], x7+key[3])
	le.PutUint32(out[32:], x8+key[4])
	le.PutUint32(out[36:], x9+key[5])
	le.PutUint32(out[40:], x10+key[6])
	le.PutUint32(out[44:], x11+key[7])
	le.PutUint32(out[48:], x12+counter)
	le.PutUint32(out[52:], x13+nonce[0])
	le.PutUint32(out[56:], x14+nonce[1])
	le.PutUint32(out[60:], x15+nonce[2])
}

// chachaXOR sets dst = src XOR keystream starting at block counter 1.
func (c *chacha20poly1305) chachaXOR(dst, src []byte, nonce *[3]uint32) {
	var block [64]byte
	counter := uint32(1)
	for len(src) > 0 {
		chachaBlock(&block, &c.key, counter, nonce)
		counter++
		n := min(len(src), 64)
		subtle.XORBytes(dst[:n], src[:n], block[:n])
		dst, src = dst[n:], src[n:]
	}
}

func (c *chacha20poly1305) tag(out *[16]byte, nonce *[3]uint32, ad, ct []byte) {
	var block [64]byte
	chachaBlock(&block, &c.key, 0, nonce)
	var p poly1305
	p.init(block[:32])
	p.writePadded(ad)
	p.writePadded(ct)
	var lens [16]byte
	binary.LittleEndian.PutUint64(lens[0:], uint64(len(ad)))
	binary.LittleEndian.PutUint64(lens[8:], uint64(len(ct)))
	p.blocks(lens[:], true)
	p.finish(out)
}

func parseNonce(nonce []byte) *[3]uint32 {
	return &[3]uint32{
		binary.LittleEndian.Uint32(nonce[0:]),
		binary.LittleEndian.Uint32(nonce[4:]),
		binary.LittleEndian.Uint32(nonce[8:]),
	}
}

// Seal implements cipher.AEAD.
func (c *chacha20poly1305) Seal(dst, nonce, plaintext, ad []byte) []byte {
	if len(nonce) != chachaNonceSize {
		panic("chacha20poly1305: bad nonce length") // cipher.AEAD contract; Suite.Seal checks first
	}
	n := parseNonce(nonce)
	ret, out := sliceForAppend(dst, len(plaintext)+poly1305TagSize)
	ct := out[:len(plaintext)]
	c.chachaXOR(ct, plaintext, n)
	var t [16]byte
	c.tag(&t, n, ad, ct)
	copy(out[len(plaintext):], t[:])
	return ret
}

// Open implements cipher.AEAD.
func (c *chacha20poly1305) Open(dst, nonce, ciphertext, ad []byte) ([]byte, error) {
	if len(nonce) != chachaNonceSize {
		return nil, errChaChaOpen
	}
	if len(ciphertext) < poly1305TagSize {
		return nil, errChaChaOpen
	}
	n := parseNonce(nonce)
	ct, given := ciphertext[:len(ciphertext)-poly1305TagSize], ciphertext[len(ciphertext)-poly1305TagSize:]
	var t [16]byte
	c.tag(&t, n, ad, ct)
	if subtle.ConstantTimeCompare(t[:], given) != 1 {
		return nil, errChaChaOpen
	}
	ret, out := sliceForAppend(dst, len(ct))
	c.chachaXOR(out, ct, n)
	return ret, nil
}

func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}

// poly1305 is the one-time authenticator of RFC 8439 §2.5, with the
// accumulator h = h0 + h1·2^64 + h2·2^128 kept partially reduced modulo
// p = 2^130 - 5, and r = r0 + r1·2^64 clamped so that r0, r1 < 2^60.
type poly1305 struct {
	r0, r1     uint64
	s0, s1     uint64
	h0, h1, h2 uint64
}

func (p *poly1305) init(key []byte) {
	p.r0 = binary.LittleEndian.Uint64(key[0:]) & 0x0ffffffc0fffffff
	p.r1 = binary.LittleEndian.Uint64(key[8:]) & 0x0ffffffc0ffffffc
	p.s0 = binary.LittleEndian.Uint64(key[16:])
	p.s1 = binary.LittleEndian.Uint64(key[24:])
	p.h0, p.h1, p.h2 = 0, 0, 0
}

// writePadded absorbs b zero-padded to a multiple of 16 bytes, each block
// with the 2^128 bit set (the AEAD construction's pad16).
func (p *poly1305) writePadded(b []byte) {
	full := len(b) &^ 15
	p.blocks(b[:full], true)
	if rest := b[full:]; len(rest) > 0 {
		var blk [16]byte
		copy(blk[:], rest)
		p.blocks(blk[:], true)
	}
}

// blocks absorbs whole 16-byte blocks. With hibit each block gets 2^128
// added (a full block); the final partial block of a raw Poly1305 message is
// passed padded with 0x01 then zeros and hibit false.
func (p *poly1305) blocks(b []byte, hibit bool) {
	var hi uint64
	if hibit {
		hi = 1
	}
	h0, h1, h2 := p.h0, p.h1, p.h2
	r0, r1 := p.r0, p.r1
	for len(b) >= 16 {
		var c uint64
		h0, c = bits.Add64(h0, binary.LittleEndian.Uint64(b[0:]), 0)
		h1, c = bits.Add64(h1, binary.LittleEndian.Uint64(b[8:]), c)
		h2 += c + hi

		// h * r: products of 64-bit limbs as 128-bit (hi, lo) pairs.
		m0hi, m0lo := bits.Mul64(h0, r0)
		ahi, alo := bits.Mul64(h0, r1)
		bhi, blo := bits.Mul64(h1, r0)
		m1lo, c1 := bits.Add64(alo, blo, 0)
		m1hi, _ := bits.Add64(ahi, bhi, c1)
		chi, clo := bits.Mul64(h1, r1)
		m2lo, c2 := bits.Add64(clo, h2*r0, 0)
		m2hi, _ := bits.Add64(chi, 0, c2)
		m3 := h2 * r1

		t0 := m0lo
		t1, c3 := bits.Add64(m0hi, m1lo, 0)
		t2, c4 := bits.Add64(m1hi, m2lo, c3)
		t3, _ := bits.Add64(m2hi, m3, c4)

		// Reduce: with T = t2 + t3·2^64 = product >> 128, the part above
		// 2^130 is T>>2 and 2^130 ≡ 5, so add 5·(T>>2) = (T &^ 3) + (T >> 2).
		h0, h1, h2 = t0, t1, t2&3
		h0, c = bits.Add64(h0, t2&^3, 0)
		h1, c = bits.Add64(h1, t3, c)
		h2 += c
		h0, c = bits.Add64(h0, t2>>2|t3<<62, 0)
		h1, c = bits.Add64(h1, t3>>2, c)
		h2 += c

		b = b[16:]
	}
	p.h0, p.h1, p.h2 = h0, h1, h2
}

// write absorbs a raw Poly1305 message (used by tests of the primitive).
func (p *poly1305) write(msg []byte) {
	full := len(msg) &^ 15
	p.blocks(msg[:full], true)
	if rest := msg[full:]; len(rest) > 0 {
		var blk [16]byte
		copy(blk[:], rest)
		blk[len(rest)] = 1
		p.blocks(blk[:], false)
	}
}

func (p *poly1305) finish(out *[16]byte) {
	h0, h1, h2 := p.h0, p.h1, p.h2
	// h < 2p here; compute g = h + 5 - 2^130 and keep it when it is not negative.
	g0, c := bits.Add64(h0, 5, 0)
	g1, c := bits.Add64(h1, 0, c)
	g2 := h2 + c
	// g2 >= 4 means h + 5 >= 2^130, i.e. h >= p.
	mask := -(g2 >> 2) // all ones when h >= p
	h0 = h0&^mask | g0&mask
	h1 = h1&^mask | g1&mask
	h0, c = bits.Add64(h0, p.s0, 0)
	h1, _ = bits.Add64(h1, p.s1, c)
	binary.LittleEndian.PutUint64(out[0:], h0)
	binary.LittleEndian.PutUint64(out[8:], h1)
}
