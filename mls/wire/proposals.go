package wire

import "github.com/agwproject/agw/mls/codec"

// PreSharedKeyID names a PSK (RFC 9420 §8.4). PSKID is used for external
// PSKs; Usage, PSKGroupID and PSKEpoch for resumption PSKs.
type PreSharedKeyID struct {
	PSKType    PSKType
	PSKID      []byte
	Usage      ResumptionPSKUsage
	PSKGroupID []byte
	PSKEpoch   uint64
	PSKNonce   []byte
}

// Marshal writes the PSK id.
func (v *PreSharedKeyID) Marshal(w *codec.Writer) {
	w.U8(uint8(v.PSKType))
	switch v.PSKType {
	case PSKTypeExternal:
		w.Opaque(v.PSKID)
	case PSKTypeResumption:
		w.U8(uint8(v.Usage))
		w.Opaque(v.PSKGroupID)
		w.U64(v.PSKEpoch)
	}
	w.Opaque(v.PSKNonce)
}

// Unmarshal reads the PSK id. Unknown PSK types and resumption usages are
// errors.
func (v *PreSharedKeyID) Unmarshal(r *codec.Reader) {
	*v = PreSharedKeyID{PSKType: PSKType(r.U8())}
	if r.Err() != nil {
		return
	}
	switch v.PSKType {
	case PSKTypeExternal:
		v.PSKID = r.Opaque()
	case PSKTypeResumption:
		v.Usage = ResumptionPSKUsage(r.U8())
		if r.Err() == nil && (v.Usage < ResumptionPSKUsageApplication || v.Usage > ResumptionPSKUsageBranch) {
			r.Failf("wire: unknown resumption PSK usage %d", uint8(v.Usage))
			return
		}
		v.PSKGroupID = r.Opaque()
		v.PSKEpoch = r.U64()
	default:
		r.Failf("wire: unknown PSK type %d", uint8(v.PSKType))
		return
	}
	v.PSKNonce = r.Opaque()
}

// PSKLabel is the context of one PSK in the psk_secret derivation
// (RFC 9420 §8.4).
type PSKLabel struct {
	ID    PreSharedKeyID
	Index uint16
	Count uint16
}

// Marshal writes the label.
func (v *PSKLabel) Marshal(w *codec.Writer) {
	v.ID.Marshal(w)
	w.U16(v.Index)
	w.U16(v.Count)
}

// Unmarshal reads the label.
func (v *PSKLabel) Unmarshal(r *codec.Reader) {
	v.ID.Unmarshal(r)
	v.Index = r.U16()
	v.Count = r.U16()
}

// Add proposes adding the owner of a KeyPackage (RFC 9420 §12.1.1).
type Add struct{ KeyPackage KeyPackage }

// Marshal writes the proposal body.
func (v *Add) Marshal(w *codec.Writer) { v.KeyPackage.Marshal(w) }

// Unmarshal reads the proposal body.
func (v *Add) Unmarshal(r *codec.Reader) { v.KeyPackage.Unmarshal(r) }

// Update proposes replacing the sender's leaf (RFC 9420 §12.1.2).
type Update struct{ LeafNode LeafNode }

// Marshal writes the proposal body.
func (v *Update) Marshal(w *codec.Writer) { v.LeafNode.Marshal(w) }

// Unmarshal reads the proposal body.
func (v *Update) Unmarshal(r *codec.Reader) { v.LeafNode.Unmarshal(r) }

// Remove proposes removing the member at a leaf index (RFC 9420 §12.1.3).
type Remove struct{ Removed uint32 }

// Marshal writes the proposal body.
func (v *Remove) Marshal(w *codec.Writer) { w.U32(v.Removed) }

// Unmarshal reads the proposal body.
func (v *Remove) Unmarshal(r *codec.Reader) { v.Removed = r.U32() }

// PreSharedKey proposes injecting a PSK into the key schedule (RFC 9420
// §12.1.4).
type PreSharedKey struct{ PSK PreSharedKeyID }

// Marshal writes the proposal body.
func (v *PreSharedKey) Marshal(w *codec.Writer) { v.PSK.Marshal(w) }

// Unmarshal reads the proposal body.
func (v *PreSharedKey) Unmarshal(r *codec.Reader) { v.PSK.Unmarshal(r) }

// ReInit proposes reinitializing the group with new parameters (RFC 9420
// §12.1.5).
type ReInit struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite CipherSuite
	Extensions  []Extension
}

// Marshal writes the proposal body.
func (v *ReInit) Marshal(w *codec.Writer) {
	w.Opaque(v.GroupID)
	w.U16(uint16(v.Version))
	w.U16(uint16(v.CipherSuite))
	marshalExtensions(w, v.Extensions)
}

// Unmarshal reads the proposal body.
func (v *ReInit) Unmarshal(r *codec.Reader) {
	v.GroupID = r.Opaque()
	v.Version = ProtocolVersion(r.U16())
	v.CipherSuite = CipherSuite(r.U16())
	v.Extensions = unmarshalExtensions(r)
}

// ExternalInit carries the KEM output of an external commit (RFC 9420
// §12.1.6).
type ExternalInit struct{ KEMOutput []byte }

// Marshal writes the proposal body.
func (v *ExternalInit) Marshal(w *codec.Writer) { w.Opaque(v.KEMOutput) }

// Unmarshal reads the proposal body.
func (v *ExternalInit) Unmarshal(r *codec.Reader) { v.KEMOutput = r.Opaque() }

// GroupContextExtensions proposes new GroupContext extensions (RFC 9420
// §12.1.7).
type GroupContextExtensions struct{ Extensions []Extension }

// Marshal writes the proposal body.
func (v *GroupContextExtensions) Marshal(w *codec.Writer) { marshalExtensions(w, v.Extensions) }

// Unmarshal reads the proposal body.
func (v *GroupContextExtensions) Unmarshal(r *codec.Reader) { v.Extensions = unmarshalExtensions(r) }

// Proposal is a typed proposal (RFC 9420 §12.1): the pointer field that
// matches Type holds the body. Proposal types not defined by RFC 9420 are a
// decode error.
type Proposal struct {
	Type                   ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
}

// body returns the Marshaler for the selected variant, or nil for an
// unknown type. A nil pointer yields the zero body.
func (v *Proposal) body() Marshaler {
	switch v.Type {
	case ProposalTypeAdd:
		return orZero(v.Add)
	case ProposalTypeUpdate:
		return orZero(v.Update)
	case ProposalTypeRemove:
		return orZero(v.Remove)
	case ProposalTypePSK:
		return orZero(v.PreSharedKey)
	case ProposalTypeReInit:
		return orZero(v.ReInit)
	case ProposalTypeExternalInit:
		return orZero(v.ExternalInit)
	case ProposalTypeGroupContextExtensions:
		return orZero(v.GroupContextExtensions)
	}
	return nil
}

// orZero returns p, or a pointer to a zero T when p is nil.
func orZero[T any, P interface {
	*T
	Marshaler
}](p P) Marshaler {
	if p == nil {
		return P(new(T))
	}
	return p
}

// Marshal writes the proposal.
func (v *Proposal) Marshal(w *codec.Writer) {
	w.U16(uint16(v.Type))
	if b := v.body(); b != nil {
		b.Marshal(w)
	}
}

// Unmarshal reads the proposal.
func (v *Proposal) Unmarshal(r *codec.Reader) {
	*v = Proposal{Type: ProposalType(r.U16())}
	if r.Err() != nil {
		return
	}
	switch v.Type {
	case ProposalTypeAdd:
		v.Add = new(Add)
		v.Add.Unmarshal(r)
	case ProposalTypeUpdate:
		v.Update = new(Update)
		v.Update.Unmarshal(r)
	case ProposalTypeRemove:
		v.Remove = new(Remove)
		v.Remove.Unmarshal(r)
	case ProposalTypePSK:
		v.PreSharedKey = new(PreSharedKey)
		v.PreSharedKey.Unmarshal(r)
	case ProposalTypeReInit:
		v.ReInit = new(ReInit)
		v.ReInit.Unmarshal(r)
	case ProposalTypeExternalInit:
		v.ExternalInit = new(ExternalInit)
		v.ExternalInit.Unmarshal(r)
	case ProposalTypeGroupContextExtensions:
		v.GroupContextExtensions = new(GroupContextExtensions)
		v.GroupContextExtensions.Unmarshal(r)
	default:
		r.Failf("wire: unknown proposal type 0x%04x", uint16(v.Type))
	}
}

// ProposalOrRef is one entry of a Commit: a proposal by value (Proposal
// set) or a ProposalRef (Reference, when Proposal is nil).
type ProposalOrRef struct {
	Proposal  *Proposal
	Reference []byte
}

// Marshal writes the entry.
func (v *ProposalOrRef) Marshal(w *codec.Writer) {
	if v.Proposal != nil {
		w.U8(uint8(ProposalOrRefTypeProposal))
		v.Proposal.Marshal(w)
		return
	}
	w.U8(uint8(ProposalOrRefTypeReference))
	w.Opaque(v.Reference)
}

// Unmarshal reads the entry. An unknown ProposalOrRefType is an error.
func (v *ProposalOrRef) Unmarshal(r *codec.Reader) {
	*v = ProposalOrRef{}
	t := ProposalOrRefType(r.U8())
	if r.Err() != nil {
		return
	}
	switch t {
	case ProposalOrRefTypeProposal:
		v.Proposal = new(Proposal)
		v.Proposal.Unmarshal(r)
	case ProposalOrRefTypeReference:
		v.Reference = r.Opaque()
	default:
		r.Failf("wire: unknown proposal-or-reference type %d", uint8(t))
	}
}

// Commit applies proposals and optionally updates the committer's path
// (RFC 9420 §12.4).
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

// Marshal writes the commit.
func (v *Commit) Marshal(w *codec.Writer) {
	w.Vector(func(w *codec.Writer) {
		for i := range v.Proposals {
			v.Proposals[i].Marshal(w)
		}
	})
	w.Optional(v.Path != nil, func(w *codec.Writer) { v.Path.Marshal(w) })
}

// Unmarshal reads the commit.
func (v *Commit) Unmarshal(r *codec.Reader) {
	*v = Commit{}
	r.Elements(func(r *codec.Reader) {
		var p ProposalOrRef
		p.Unmarshal(r)
		v.Proposals = append(v.Proposals, p)
	})
	if r.Err() != nil {
		v.Proposals = nil
		return
	}
	r.Optional(func(r *codec.Reader) {
		v.Path = new(UpdatePath)
		v.Path.Unmarshal(r)
	})
	if r.Err() != nil {
		v.Path = nil
	}
}
