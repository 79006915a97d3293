// Package codec implements the TLS presentation language encoding used by
// MLS (RFC 9420 §2.1), including the variable-length vector header of
// §2.1.2: a QUIC-style varint of 1, 2 or 4 bytes.
//
// Writer appends to a byte slice and never fails except for over-long
// vectors. Reader has a sticky error: after the first failure every read
// returns zero values and Err reports the failure, so decoders can read a
// whole struct and check the error once.
package codec

import (
	"errors"
	"fmt"
)

// MaxVarint is the largest length a variable-length vector header can carry.
const MaxVarint = 1<<30 - 1

// Errors returned by Reader. Decoders wrap them; compare with errors.Is.
var (
	ErrShort        = errors.New("mls codec: input too short")
	ErrTrailing     = errors.New("mls codec: trailing bytes after value")
	ErrVarintPrefix = errors.New("mls codec: invalid varint prefix 0b11")
	ErrNonMinimal   = errors.New("mls codec: varint not minimally encoded")
	ErrTooLong      = errors.New("mls codec: vector longer than 2^30-1 bytes")
	ErrInvalid      = errors.New("mls codec: invalid value")
)

// AppendVarint appends the §2.1.2 varint encoding of n to dst.
func AppendVarint(dst []byte, n int) ([]byte, error) {
	switch {
	case n < 0 || n > MaxVarint:
		return dst, ErrTooLong
	case n < 1<<6:
		return append(dst, byte(n)), nil
	case n < 1<<14:
		return append(dst, 0x40|byte(n>>8), byte(n)), nil
	default:
		return append(dst, 0x80|byte(n>>24), byte(n>>16), byte(n>>8), byte(n)), nil
	}
}

// VarintLen returns how many bytes the varint encoding of n takes.
func VarintLen(n int) int {
	switch {
	case n < 1<<6:
		return 1
	case n < 1<<14:
		return 2
	default:
		return 4
	}
}

// ReadVarint decodes a varint from the start of b and returns the value and
// the number of bytes it used.
func ReadVarint(b []byte) (n int, used int, err error) {
	if len(b) == 0 {
		return 0, 0, ErrShort
	}
	switch b[0] >> 6 {
	case 0:
		return int(b[0] & 0x3f), 1, nil
	case 1:
		if len(b) < 2 {
			return 0, 0, ErrShort
		}
		n = int(b[0]&0x3f)<<8 | int(b[1])
		if n < 1<<6 {
			return 0, 0, ErrNonMinimal
		}
		return n, 2, nil
	case 2:
		if len(b) < 4 {
			return 0, 0, ErrShort
		}
		n = int(b[0]&0x3f)<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if n < 1<<14 {
			return 0, 0, ErrNonMinimal
		}
		return n, 4, nil
	default:
		return 0, 0, ErrVarintPrefix
	}
}

// Writer accumulates an encoding. The zero value is ready to use.
type Writer struct {
	buf []byte
	err error
}

// NewWriter returns a Writer whose buffer has the given capacity.
func NewWriter(capacity int) *Writer { return &Writer{buf: make([]byte, 0, capacity)} }

// Bytes returns the encoding so far and the first error (a vector that was
// too long), if any.
func (w *Writer) Bytes() ([]byte, error) { return w.buf, w.err }

// MustBytes returns the encoding; it panics if a vector was too long, which
// only happens for inputs over 1 GiB that callers never build.
func (w *Writer) MustBytes() []byte {
	if w.err != nil {
		panic(w.err)
	}
	return w.buf
}

// Len returns the number of bytes written so far.
func (w *Writer) Len() int { return len(w.buf) }

// U8 writes one byte.
func (w *Writer) U8(v uint8) { w.buf = append(w.buf, v) }

// U16 writes a big-endian uint16.
func (w *Writer) U16(v uint16) { w.buf = append(w.buf, byte(v>>8), byte(v)) }

// U32 writes a big-endian uint32.
func (w *Writer) U32(v uint32) {
	w.buf = append(w.buf, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// U64 writes a big-endian uint64.
func (w *Writer) U64(v uint64) {
	w.buf = append(w.buf, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// Bool writes a boolean as one byte (0 or 1).
func (w *Writer) Bool(v bool) {
	if v {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// Raw appends b with no length prefix (fixed-size fields).
func (w *Writer) Raw(b []byte) { w.buf = append(w.buf, b...) }

// Opaque writes b as opaque<V>: a varint length then the bytes.
func (w *Writer) Opaque(b []byte) {
	var err error
	w.buf, err = AppendVarint(w.buf, len(b))
	if err != nil && w.err == nil {
		w.err = err
	}
	w.buf = append(w.buf, b...)
}

// Vector writes a variable-length vector whose body is produced by body.
// The length header is fixed up after the body is written.
func (w *Writer) Vector(body func(w *Writer)) {
	start := len(w.buf)
	// Reserve 4 bytes, the largest header, then shrink if smaller suffices.
	w.buf = append(w.buf, 0, 0, 0, 0)
	body(w)
	n := len(w.buf) - start - 4
	hdr, err := AppendVarint(make([]byte, 0, 4), n)
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return
	}
	if len(hdr) != 4 {
		copy(w.buf[start+len(hdr):], w.buf[start+4:])
		w.buf = w.buf[:len(w.buf)-(4-len(hdr))]
	}
	copy(w.buf[start:], hdr)
}

// Optional writes the optional<T> presence byte and, when present, the value.
func (w *Writer) Optional(present bool, value func(w *Writer)) {
	w.Bool(present)
	if present {
		value(w)
	}
}

// Reader decodes from a byte slice. Slices it returns alias the input.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records err (wrapped as invalid) unless an error is already recorded.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Failf records a formatted ErrInvalid error unless one is already recorded.
func (r *Reader) Failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
}

// Remaining returns the number of unread bytes.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

// Empty reports whether all input was read (and no error occurred).
func (r *Reader) Empty() bool { return r.err == nil && r.off == len(r.b) }

// Offset returns how many bytes were consumed.
func (r *Reader) Offset() int { return r.off }

// Finish returns the recorded error or, if none, ErrTrailing when input remains.
func (r *Reader) Finish() error {
	if r.err != nil {
		return r.err
	}
	if r.off != len(r.b) {
		return fmt.Errorf("%w: %d bytes", ErrTrailing, len(r.b)-r.off)
	}
	return nil
}

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = ErrShort
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// U16 reads a big-endian uint16.
func (r *Reader) U16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return uint16(b[0])<<8 | uint16(b[1])
}

// U32 reads a big-endian uint32.
func (r *Reader) U32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// U64 reads a big-endian uint64.
func (r *Reader) U64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// Bool reads a boolean byte; any value other than 0 or 1 is an error.
func (r *Reader) Bool() bool {
	v := r.U8()
	if v > 1 {
		r.Failf("boolean byte %d", v)
		return false
	}
	return v == 1
}

// Raw reads n bytes with no length prefix.
func (r *Reader) Raw(n int) []byte { return r.take(n) }

func (r *Reader) varint() int {
	if r.err != nil {
		return 0
	}
	n, used, err := ReadVarint(r.b[r.off:])
	if err != nil {
		r.err = err
		return 0
	}
	r.off += used
	return n
}

// Opaque reads opaque<V>. The result aliases the input; it is empty, not
// nil, for a zero-length vector.
func (r *Reader) Opaque() []byte {
	n := r.varint()
	b := r.take(n)
	if b == nil && r.err == nil {
		return []byte{}
	}
	return b
}

// OpaqueCopy reads opaque<V> into a fresh slice.
func (r *Reader) OpaqueCopy() []byte {
	b := r.Opaque()
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// Vector reads a variable-length vector header and returns a Reader over
// its body. Errors in the sub-reader do not propagate automatically: call
// r.Sub to read elements and propagate errors.
func (r *Reader) Vector() *Reader {
	n := r.varint()
	b := r.take(n)
	if r.err != nil {
		return &Reader{err: r.err}
	}
	return &Reader{b: b}
}

// Elements reads a variable-length vector and calls elem until its body is
// consumed. Errors in elem (recorded on the sub-reader) are propagated to r,
// as is an element that reads past the vector's end.
func (r *Reader) Elements(elem func(r *Reader)) {
	sub := r.Vector()
	for sub.err == nil && sub.off < len(sub.b) {
		elem(sub)
	}
	if sub.err != nil {
		r.Fail(sub.err)
	}
}

// Optional reads the optional<T> presence byte and, when it is 1, calls value.
func (r *Reader) Optional(value func(r *Reader)) bool {
	present := r.Bool()
	if present && r.err == nil {
		value(r)
	}
	return present && r.err == nil
}
