package wire

import "github.com/agwproject/agw/mls/codec"

// LeafNode is a member's leaf in the ratchet tree (RFC 9420 §7.2).
// Lifetime is on the wire only for source key_package, ParentHash only for
// source commit.
type LeafNode struct {
	EncryptionKey []byte
	SignatureKey  []byte
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      Lifetime
	ParentHash    []byte
	Extensions    []Extension
	Signature     []byte
}

// marshalContent writes every field up to and including the extensions.
func (v *LeafNode) marshalContent(w *codec.Writer) {
	w.Opaque(v.EncryptionKey)
	w.Opaque(v.SignatureKey)
	v.Credential.Marshal(w)
	v.Capabilities.Marshal(w)
	w.U8(uint8(v.Source))
	switch v.Source {
	case LeafNodeSourceKeyPackage:
		v.Lifetime.Marshal(w)
	case LeafNodeSourceCommit:
		w.Opaque(v.ParentHash)
	}
	marshalExtensions(w, v.Extensions)
}

// Marshal writes the leaf node.
func (v *LeafNode) Marshal(w *codec.Writer) {
	v.marshalContent(w)
	w.Opaque(v.Signature)
}

// Unmarshal reads the leaf node. An unknown leaf_node_source is an error.
func (v *LeafNode) Unmarshal(r *codec.Reader) {
	*v = LeafNode{}
	v.EncryptionKey = r.Opaque()
	v.SignatureKey = r.Opaque()
	v.Credential.Unmarshal(r)
	v.Capabilities.Unmarshal(r)
	v.Source = LeafNodeSource(r.U8())
	if r.Err() != nil {
		return
	}
	switch v.Source {
	case LeafNodeSourceKeyPackage:
		v.Lifetime.Unmarshal(r)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		v.ParentHash = r.Opaque()
	default:
		r.Failf("wire: unknown leaf node source %d", uint8(v.Source))
		return
	}
	v.Extensions = unmarshalExtensions(r)
	v.Signature = r.Opaque()
}

// TBS returns the encoded LeafNodeTBS, the content the leaf signature
// covers. groupID and leafIndex are included only for sources update and
// commit; they are ignored for key_package.
func (v *LeafNode) TBS(groupID []byte, leafIndex uint32) []byte {
	w := codec.NewWriter(256)
	v.marshalContent(w)
	switch v.Source {
	case LeafNodeSourceUpdate, LeafNodeSourceCommit:
		w.Opaque(groupID)
		w.U32(leafIndex)
	}
	return w.MustBytes()
}
