package wire

import "github.com/agwproject/agw/mls/codec"

// GroupContext is the summary of a group's state that every member agrees
// on in an epoch (RFC 9420 §8.1).
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             CipherSuite
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              []Extension
}

// Marshal writes the group context.
func (v *GroupContext) Marshal(w *codec.Writer) {
	w.U16(uint16(v.Version))
	w.U16(uint16(v.CipherSuite))
	w.Opaque(v.GroupID)
	w.U64(v.Epoch)
	w.Opaque(v.TreeHash)
	w.Opaque(v.ConfirmedTranscriptHash)
	marshalExtensions(w, v.Extensions)
}

// Unmarshal reads the group context.
func (v *GroupContext) Unmarshal(r *codec.Reader) {
	v.Version = ProtocolVersion(r.U16())
	v.CipherSuite = CipherSuite(r.U16())
	v.GroupID = r.Opaque()
	v.Epoch = r.U64()
	v.TreeHash = r.Opaque()
	v.ConfirmedTranscriptHash = r.Opaque()
	v.Extensions = unmarshalExtensions(r)
}
