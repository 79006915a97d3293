package wire

import "github.com/agwproject/agw/mls/codec"

// Sender identifies who sent a message (RFC 9420 §6): LeafIndex for
// members, SenderIndex (into the external_senders extension) for external
// senders; new members have no index.
type Sender struct {
	Type        SenderType
	LeafIndex   uint32
	SenderIndex uint32
}

// Marshal writes the sender.
func (v *Sender) Marshal(w *codec.Writer) {
	w.U8(uint8(v.Type))
	switch v.Type {
	case SenderTypeMember:
		w.U32(v.LeafIndex)
	case SenderTypeExternal:
		w.U32(v.SenderIndex)
	}
}

// Unmarshal reads the sender. An unknown sender type is an error.
func (v *Sender) Unmarshal(r *codec.Reader) {
	*v = Sender{Type: SenderType(r.U8())}
	if r.Err() != nil {
		return
	}
	switch v.Type {
	case SenderTypeMember:
		v.LeafIndex = r.U32()
	case SenderTypeExternal:
		v.SenderIndex = r.U32()
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		r.Failf("wire: unknown sender type %d", uint8(v.Type))
	}
}

// marshalContentBody writes the content-type-selected body shared by
// FramedContent and PrivateMessageContent.
func marshalContentBody(w *codec.Writer, ct ContentType, app []byte, p *Proposal, c *Commit) {
	switch ct {
	case ContentTypeApplication:
		w.Opaque(app)
	case ContentTypeProposal:
		if p == nil {
			p = &Proposal{}
		}
		p.Marshal(w)
	case ContentTypeCommit:
		if c == nil {
			c = &Commit{}
		}
		c.Marshal(w)
	}
}

// unmarshalContentBody reads the body selected by ct; an unknown content
// type is an error.
func unmarshalContentBody(r *codec.Reader, ct ContentType) (app []byte, p *Proposal, c *Commit) {
	switch ct {
	case ContentTypeApplication:
		app = r.Opaque()
	case ContentTypeProposal:
		p = new(Proposal)
		p.Unmarshal(r)
	case ContentTypeCommit:
		c = new(Commit)
		c.Unmarshal(r)
	default:
		r.Failf("wire: unknown content type %d", uint8(ct))
	}
	if r.Err() != nil {
		return nil, nil, nil
	}
	return app, p, c
}

// FramedContent is the content of a handshake or application message
// (RFC 9420 §6). The field matching ContentType holds the body.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	Application       []byte
	Proposal          *Proposal
	Commit            *Commit
}

// Marshal writes the content.
func (v *FramedContent) Marshal(w *codec.Writer) {
	w.Opaque(v.GroupID)
	w.U64(v.Epoch)
	v.Sender.Marshal(w)
	w.Opaque(v.AuthenticatedData)
	w.U8(uint8(v.ContentType))
	marshalContentBody(w, v.ContentType, v.Application, v.Proposal, v.Commit)
}

// Unmarshal reads the content.
func (v *FramedContent) Unmarshal(r *codec.Reader) {
	*v = FramedContent{}
	v.GroupID = r.Opaque()
	v.Epoch = r.U64()
	v.Sender.Unmarshal(r)
	v.AuthenticatedData = r.Opaque()
	v.ContentType = ContentType(r.U8())
	if r.Err() != nil {
		return
	}
	v.Application, v.Proposal, v.Commit = unmarshalContentBody(r, v.ContentType)
}

// FramedContentAuthData is the signature over FramedContentTBS and, for
// commits only, the confirmation tag (RFC 9420 §6.1). Its encoding depends
// on the content type, so it does not implement Marshaler.
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte
}

// Marshal writes the auth data for content type ct.
func (v *FramedContentAuthData) Marshal(w *codec.Writer, ct ContentType) {
	w.Opaque(v.Signature)
	if ct == ContentTypeCommit {
		w.Opaque(v.ConfirmationTag)
	}
}

// Unmarshal reads the auth data for content type ct.
func (v *FramedContentAuthData) Unmarshal(r *codec.Reader, ct ContentType) {
	*v = FramedContentAuthData{Signature: r.Opaque()}
	if ct == ContentTypeCommit {
		v.ConfirmationTag = r.Opaque()
	}
}

// FramedContentTBS returns the encoded FramedContentTBS, the input of the
// message signature (RFC 9420 §6.1). groupContext is the encoded
// GroupContext; it is included only for senders of type member and
// new_member_commit.
func FramedContentTBS(version ProtocolVersion, wireFormat WireFormat, content *FramedContent, groupContext []byte) []byte {
	w := codec.NewWriter(256 + len(groupContext))
	w.U16(uint16(version))
	w.U16(uint16(wireFormat))
	content.Marshal(w)
	switch content.Sender.Type {
	case SenderTypeMember, SenderTypeNewMemberCommit:
		w.Raw(groupContext)
	}
	return w.MustBytes()
}

// AuthenticatedContentTBM returns the encoded AuthenticatedContentTBM, the
// input of the membership tag MAC (RFC 9420 §6.2): the encoded
// FramedContentTBS followed by the auth data for content type ct.
func AuthenticatedContentTBM(contentTBS []byte, auth *FramedContentAuthData, ct ContentType) []byte {
	w := codec.NewWriter(len(contentTBS) + 128)
	w.Raw(contentTBS)
	auth.Marshal(w, ct)
	return w.MustBytes()
}

// AuthenticatedContent is a FramedContent with its auth data and the wire
// format it was or will be sent in (RFC 9420 §6.1).
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

// Marshal writes the authenticated content.
func (v *AuthenticatedContent) Marshal(w *codec.Writer) {
	w.U16(uint16(v.WireFormat))
	v.Content.Marshal(w)
	v.Auth.Marshal(w, v.Content.ContentType)
}

// Unmarshal reads the authenticated content. An unknown wire format is an
// error.
func (v *AuthenticatedContent) Unmarshal(r *codec.Reader) {
	*v = AuthenticatedContent{WireFormat: WireFormat(r.U16())}
	if r.Err() == nil && !v.WireFormat.Valid() {
		r.Failf("wire: unknown wire format %d", uint16(v.WireFormat))
		return
	}
	v.Content.Unmarshal(r)
	v.Auth.Unmarshal(r, v.Content.ContentType)
}

// PublicMessage is a signed, unencrypted handshake message (RFC 9420
// §6.2). MembershipTag is on the wire only when the sender is a member.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte
}

// Marshal writes the message.
func (v *PublicMessage) Marshal(w *codec.Writer) {
	v.Content.Marshal(w)
	v.Auth.Marshal(w, v.Content.ContentType)
	if v.Content.Sender.Type == SenderTypeMember {
		w.Opaque(v.MembershipTag)
	}
}

// Unmarshal reads the message.
func (v *PublicMessage) Unmarshal(r *codec.Reader) {
	*v = PublicMessage{}
	v.Content.Unmarshal(r)
	v.Auth.Unmarshal(r, v.Content.ContentType)
	if v.Content.Sender.Type == SenderTypeMember {
		v.MembershipTag = r.Opaque()
	}
}

// ConfirmedTranscriptHashInput is the part of a commit message hashed
// into the confirmed transcript hash (RFC 9420 §8.2).
type ConfirmedTranscriptHashInput struct {
	WireFormat WireFormat
	Content    FramedContent
	Signature  []byte
}

// Marshal writes the input.
func (v *ConfirmedTranscriptHashInput) Marshal(w *codec.Writer) {
	w.U16(uint16(v.WireFormat))
	v.Content.Marshal(w)
	w.Opaque(v.Signature)
}

// Unmarshal reads the input. An unknown wire format is an error.
func (v *ConfirmedTranscriptHashInput) Unmarshal(r *codec.Reader) {
	*v = ConfirmedTranscriptHashInput{WireFormat: WireFormat(r.U16())}
	if r.Err() == nil && !v.WireFormat.Valid() {
		r.Failf("wire: unknown wire format %d", uint16(v.WireFormat))
		return
	}
	v.Content.Unmarshal(r)
	v.Signature = r.Opaque()
}

// InterimTranscriptHashInput is the part of a commit hashed into the
// interim transcript hash (RFC 9420 §8.2).
type InterimTranscriptHashInput struct {
	ConfirmationTag []byte
}

// Marshal writes the input.
func (v *InterimTranscriptHashInput) Marshal(w *codec.Writer) { w.Opaque(v.ConfirmationTag) }

// Unmarshal reads the input.
func (v *InterimTranscriptHashInput) Unmarshal(r *codec.Reader) { v.ConfirmationTag = r.Opaque() }

// TranscriptHashInputs returns the encoded ConfirmedTranscriptHashInput and
// InterimTranscriptHashInput of a commit's AuthenticatedContent.
func TranscriptHashInputs(ac *AuthenticatedContent) (confirmed, interim []byte) {
	confirmed = Encode(&ConfirmedTranscriptHashInput{
		WireFormat: ac.WireFormat,
		Content:    ac.Content,
		Signature:  ac.Auth.Signature,
	})
	interim = Encode(&InterimTranscriptHashInput{ConfirmationTag: ac.Auth.ConfirmationTag})
	return confirmed, interim
}
