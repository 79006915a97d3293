package wire

import "github.com/agwproject/agw/mls/codec"

// Extension is one extension of a KeyPackage, LeafNode, GroupContext or
// GroupInfo (RFC 9420 §7.2). Data is the encoded extension body; any type,
// known, unknown or GREASE, round-trips unchanged.
type Extension struct {
	Type ExtensionType
	Data []byte
}

// Marshal writes the extension.
func (v *Extension) Marshal(w *codec.Writer) {
	w.U16(uint16(v.Type))
	w.Opaque(v.Data)
}

// Unmarshal reads the extension.
func (v *Extension) Unmarshal(r *codec.Reader) {
	v.Type = ExtensionType(r.U16())
	v.Data = r.Opaque()
}

// Credential binds an identity to a signature key (RFC 9420 §5.3).
// Identity is set for basic credentials, Certificates (DER, leaf first) for
// x509. For any other type, including GREASE, the body is read as
// opaque<V> into Raw and written back the same way.
type Credential struct {
	Type         CredentialType
	Identity     []byte
	Certificates [][]byte
	Raw          []byte
}

// Marshal writes the credential.
func (v *Credential) Marshal(w *codec.Writer) {
	w.U16(uint16(v.Type))
	switch v.Type {
	case CredentialTypeBasic:
		w.Opaque(v.Identity)
	case CredentialTypeX509:
		marshalOpaques(w, v.Certificates)
	default:
		w.Opaque(v.Raw)
	}
}

// Unmarshal reads the credential.
func (v *Credential) Unmarshal(r *codec.Reader) {
	*v = Credential{Type: CredentialType(r.U16())}
	switch v.Type {
	case CredentialTypeBasic:
		v.Identity = r.Opaque()
	case CredentialTypeX509:
		v.Certificates = unmarshalOpaques(r)
	default:
		v.Raw = r.Opaque()
	}
}

// Capabilities lists what a client supports (RFC 9420 §7.2). Unknown and
// GREASE values are kept as they are.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []CipherSuite
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

// Marshal writes the capabilities.
func (v *Capabilities) Marshal(w *codec.Writer) {
	marshalU16s(w, v.Versions)
	marshalU16s(w, v.CipherSuites)
	marshalU16s(w, v.Extensions)
	marshalU16s(w, v.Proposals)
	marshalU16s(w, v.Credentials)
}

// Unmarshal reads the capabilities.
func (v *Capabilities) Unmarshal(r *codec.Reader) {
	v.Versions = unmarshalU16s[ProtocolVersion](r)
	v.CipherSuites = unmarshalU16s[CipherSuite](r)
	v.Extensions = unmarshalU16s[ExtensionType](r)
	v.Proposals = unmarshalU16s[ProposalType](r)
	v.Credentials = unmarshalU16s[CredentialType](r)
}

// Lifetime is the validity period of a KeyPackage leaf, in seconds since
// the Unix epoch (RFC 9420 §7.2).
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// Marshal writes the lifetime.
func (v *Lifetime) Marshal(w *codec.Writer) {
	w.U64(v.NotBefore)
	w.U64(v.NotAfter)
}

// Unmarshal reads the lifetime.
func (v *Lifetime) Unmarshal(r *codec.Reader) {
	v.NotBefore = r.U64()
	v.NotAfter = r.U64()
}
