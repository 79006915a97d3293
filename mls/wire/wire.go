// Package wire holds every wire struct of MLS (RFC 9420) with strict
// encoding and decoding in the TLS presentation language of package codec.
//
// Each struct T has Marshal(w *codec.Writer) and Unmarshal(r *codec.Reader).
// Encode and Decode wrap them; Decode refuses trailing bytes. Decoding is
// strict where the RFC requires it: unknown wire formats, content types,
// sender types, proposal types, node types, leaf node sources, PSK types and
// proposal-or-reference types are errors, as are optional presence bytes
// other than 0 and 1. Unknown (and GREASE) extension and credential types
// decode as raw bytes and re-encode identically.
//
// Marshal encodes what the type fields select. A nil body pointer for the
// selected variant encodes as the zero value of that body, so Marshal never
// panics; build values with matching type fields and bodies.
//
// Byte slices in values decoded by Decode alias a private copy of the
// input, never the caller's buffer. Values decoded by DecodeAlias, or by
// calling Unmarshal on a codec.Reader directly, alias the input itself.
//
// For large application messages, appmsg.go gives the pieces package mls
// needs to sign, encrypt and decrypt them without copying the application
// data more than once: ApplicationTBS (the signed content as pieces),
// ApplicationContentLen and PutApplicationContent (the plaintext of the
// ciphertext) and AppendPrivateMessage (the MLSMessage laid out with room
// for its encrypted fields).
package wire

import (
	"fmt"

	"github.com/agwproject/agw/mls/codec"
)

// Marshaler is a value with an MLS wire encoding.
type Marshaler interface {
	Marshal(w *codec.Writer)
}

// Unmarshaler is a value that decodes from its MLS wire encoding.
type Unmarshaler interface {
	Unmarshal(r *codec.Reader)
}

// Encode returns the wire encoding of m. It panics only if a vector is
// longer than 2^30-1 bytes, which no valid MLS value is; use EncodeChecked
// to get that as an error instead.
func Encode(m Marshaler) []byte {
	w := codec.NewWriter(256)
	m.Marshal(w)
	return w.MustBytes()
}

// EncodeChecked is Encode returning an over-long vector as an error.
func EncodeChecked(m Marshaler) ([]byte, error) {
	w := codec.NewWriter(256)
	m.Marshal(w)
	b, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls wire: encode %T: %w", m, err)
	}
	return b, nil
}

// Decode decodes b into u. The whole input must be consumed: trailing
// bytes are an error (codec.ErrTrailing). The decoded value does not alias b.
func Decode(b []byte, u Unmarshaler) error {
	r := codec.NewReader(append([]byte(nil), b...))
	u.Unmarshal(r)
	if err := r.Finish(); err != nil {
		return fmt.Errorf("mls wire: decode %T: %w", u, err)
	}
	return nil
}

// marshalExtensions writes Extension extensions<V>.
func marshalExtensions(w *codec.Writer, exts []Extension) {
	w.Vector(func(w *codec.Writer) {
		for i := range exts {
			exts[i].Marshal(w)
		}
	})
}

// unmarshalExtensions reads Extension extensions<V>.
func unmarshalExtensions(r *codec.Reader) []Extension {
	var exts []Extension
	r.Elements(func(r *codec.Reader) {
		var e Extension
		e.Unmarshal(r)
		exts = append(exts, e)
	})
	if r.Err() != nil {
		return nil
	}
	return exts
}

// marshalU16s writes a vector of 16-bit enum values.
func marshalU16s[T ~uint16](w *codec.Writer, vs []T) {
	w.Vector(func(w *codec.Writer) {
		for _, v := range vs {
			w.U16(uint16(v))
		}
	})
}

// unmarshalU16s reads a vector of 16-bit enum values.
func unmarshalU16s[T ~uint16](r *codec.Reader) []T {
	var vs []T
	r.Elements(func(r *codec.Reader) { vs = append(vs, T(r.U16())) })
	if r.Err() != nil {
		return nil
	}
	return vs
}

// marshalOpaques writes a vector of opaque<V> values.
func marshalOpaques(w *codec.Writer, vs [][]byte) {
	w.Vector(func(w *codec.Writer) {
		for _, v := range vs {
			w.Opaque(v)
		}
	})
}

// unmarshalOpaques reads a vector of opaque<V> values.
func unmarshalOpaques(r *codec.Reader) [][]byte {
	var vs [][]byte
	r.Elements(func(r *codec.Reader) { vs = append(vs, r.Opaque()) })
	if r.Err() != nil {
		return nil
	}
	return vs
}
