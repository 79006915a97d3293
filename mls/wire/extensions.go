package wire

import (
	"fmt"

	"github.com/agwproject/agw/mls/codec"
)

// ExternalSender is one entry of the external_senders GroupContext
// extension (RFC 9420 §12.1.8.1).
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

// Marshal writes the external sender.
func (v *ExternalSender) Marshal(w *codec.Writer) {
	w.Opaque(v.SignatureKey)
	v.Credential.Marshal(w)
}

// Unmarshal reads the external sender.
func (v *ExternalSender) Unmarshal(r *codec.Reader) {
	v.SignatureKey = r.Opaque()
	v.Credential.Unmarshal(r)
}

// ExternalSenders is the body of the external_senders extension: a vector
// ExternalSender external_senders<V> (RFC 9420 §12.1.8.1).
type ExternalSenders []ExternalSender

// Marshal writes the vector.
func (v *ExternalSenders) Marshal(w *codec.Writer) {
	w.Vector(func(w *codec.Writer) {
		for i := range *v {
			(*v)[i].Marshal(w)
		}
	})
}

// Unmarshal reads the vector.
func (v *ExternalSenders) Unmarshal(r *codec.Reader) {
	var out ExternalSenders
	r.Elements(func(r *codec.Reader) {
		var s ExternalSender
		s.Unmarshal(r)
		out = append(out, s)
	})
	if r.Err() != nil {
		out = nil
	}
	*v = out
}

// RequiredCapabilities is the body of the required_capabilities extension
// (RFC 9420 §11.1).
type RequiredCapabilities struct {
	ExtensionTypes  []ExtensionType
	ProposalTypes   []ProposalType
	CredentialTypes []CredentialType
}

// Marshal writes the required capabilities.
func (v *RequiredCapabilities) Marshal(w *codec.Writer) {
	marshalU16s(w, v.ExtensionTypes)
	marshalU16s(w, v.ProposalTypes)
	marshalU16s(w, v.CredentialTypes)
}

// Unmarshal reads the required capabilities.
func (v *RequiredCapabilities) Unmarshal(r *codec.Reader) {
	v.ExtensionTypes = unmarshalU16s[ExtensionType](r)
	v.ProposalTypes = unmarshalU16s[ProposalType](r)
	v.CredentialTypes = unmarshalU16s[CredentialType](r)
}

// ExternalPub is the body of the external_pub GroupInfo extension: the
// HPKE public key for external commits (RFC 9420 §12.4.3.2).
type ExternalPub struct {
	PublicKey []byte
}

// Marshal writes the external public key.
func (v *ExternalPub) Marshal(w *codec.Writer) { w.Opaque(v.PublicKey) }

// Unmarshal reads the external public key.
func (v *ExternalPub) Unmarshal(r *codec.Reader) { v.PublicKey = r.Opaque() }

// ApplicationID is the body of the application_id LeafNode extension:
// opaque application_id<V> (RFC 9420 §5.3.3).
type ApplicationID struct {
	ID []byte
}

// Marshal writes the application id.
func (v *ApplicationID) Marshal(w *codec.Writer) { w.Opaque(v.ID) }

// Unmarshal reads the application id.
func (v *ApplicationID) Unmarshal(r *codec.Reader) { v.ID = r.Opaque() }

// FindExtension returns the first extension of type t in exts, or nil.
func FindExtension(exts []Extension, t ExtensionType) *Extension {
	for i := range exts {
		if exts[i].Type == t {
			return &exts[i]
		}
	}
	return nil
}

// NewExtension encodes body as the data of an extension of type t.
func NewExtension(t ExtensionType, body Marshaler) Extension {
	return Extension{Type: t, Data: Encode(body)}
}

// DecodeExtension finds the first extension of type t in exts and decodes
// its data into u. It reports whether the extension was present.
func DecodeExtension(exts []Extension, t ExtensionType, u Unmarshaler) (bool, error) {
	e := FindExtension(exts, t)
	if e == nil {
		return false, nil
	}
	if err := Decode(e.Data, u); err != nil {
		return true, fmt.Errorf("mls wire: %v extension: %w", t, err)
	}
	return true, nil
}

// DuplicateExtension returns the first extension type that occurs more
// than once in exts, if any. Decoding allows duplicates; validation code
// uses this to refuse them.
func DuplicateExtension(exts []Extension) (ExtensionType, bool) {
	seen := make(map[ExtensionType]struct{}, len(exts))
	for _, e := range exts {
		if _, ok := seen[e.Type]; ok {
			return e.Type, true
		}
		seen[e.Type] = struct{}{}
	}
	return 0, false
}
