package suite

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
)

// The key schedule, secret tree and TreeKEM run thousands of short HMACs
// (one HKDF block each) for a large group. hmacAppend computes HMAC
// (RFC 2104) over the concatenation a||b||c with one-shot hashes on stack
// buffers, which avoids the allocations of hmac.New; long messages take the
// streaming crypto/hmac path.

const hmacStackMsg = 320 // largest a||b||c handled on the stack

func (s *Suite) blockSize() int {
	if s.hash == hashSHA256 {
		return sha256.BlockSize
	}
	return sha512.BlockSize
}

// sum hashes data into out and returns the digest slice of out.
func (s *Suite) sum(out *[64]byte, data []byte) []byte {
	switch s.hash {
	case hashSHA256:
		h := sha256.Sum256(data)
		return out[:copy(out[:], h[:])]
	case hashSHA384:
		h := sha512.Sum384(data)
		return out[:copy(out[:], h[:])]
	default:
		h := sha512.Sum512(data)
		return out[:copy(out[:], h[:])]
	}
}

// hmacAppend appends HMAC(key, a||b||c) to dst.
func (s *Suite) hmacAppend(dst, key, a, b, c []byte) []byte {
	msgLen := len(a) + len(b) + len(c)
	if msgLen > hmacStackMsg {
		// One copy keeps a, b and c from escaping through the interface
		// calls, so callers' small buffers stay on their stacks.
		msg := make([]byte, 0, msgLen)
		msg = append(append(append(msg, a...), b...), c...)
		m := hmac.New(s.newHash, key)
		m.Write(msg)
		return m.Sum(dst)
	}
	bs := s.blockSize()
	var k [128]byte
	var digest [64]byte
	if len(key) > bs {
		copy(k[:], s.sum(&digest, key))
	} else {
		copy(k[:], key)
	}
	var buf [128 + hmacStackMsg]byte
	for i := range bs {
		buf[i] = k[i] ^ 0x36
	}
	n := bs
	n += copy(buf[n:], a)
	n += copy(buf[n:], b)
	n += copy(buf[n:], c)
	inner := s.sum(&digest, buf[:n])
	for i := range bs {
		buf[i] = k[i] ^ 0x5c
	}
	n = bs + copy(buf[bs:], inner)
	out := s.sum(&digest, buf[:n])
	dst = append(dst, out...)
	clear(k[:])
	clear(buf[:])
	clear(digest[:])
	return dst
}
