package wire

import "github.com/agwproject/agw/mls/codec"

// KeyPackage is a client's signed offer to be added to groups (RFC 9420
// §10).
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite CipherSuite
	InitKey     []byte
	LeafNode    LeafNode
	Extensions  []Extension
	Signature   []byte
}

func (v *KeyPackage) marshalContent(w *codec.Writer) {
	w.U16(uint16(v.Version))
	w.U16(uint16(v.CipherSuite))
	w.Opaque(v.InitKey)
	v.LeafNode.Marshal(w)
	marshalExtensions(w, v.Extensions)
}

// Marshal writes the key package.
func (v *KeyPackage) Marshal(w *codec.Writer) {
	v.marshalContent(w)
	w.Opaque(v.Signature)
}

// Unmarshal reads the key package.
func (v *KeyPackage) Unmarshal(r *codec.Reader) {
	*v = KeyPackage{}
	v.Version = ProtocolVersion(r.U16())
	v.CipherSuite = CipherSuite(r.U16())
	v.InitKey = r.Opaque()
	v.LeafNode.Unmarshal(r)
	v.Extensions = unmarshalExtensions(r)
	v.Signature = r.Opaque()
}

// TBS returns the encoded KeyPackageTBS: everything but the signature.
func (v *KeyPackage) TBS() []byte {
	w := codec.NewWriter(512)
	v.marshalContent(w)
	return w.MustBytes()
}
