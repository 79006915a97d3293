package wire

import "github.com/agwproject/agw/mls/codec"

// PrivateMessage is an encrypted handshake or application message
// (RFC 9420 §6.3).
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// writePrivateHeader writes group_id, epoch and content_type, the fields
// that begin PrivateMessage, SenderDataAAD and PrivateContentAAD.
func writePrivateHeader(w *codec.Writer, groupID []byte, epoch uint64, ct ContentType) {
	w.Opaque(groupID)
	w.U64(epoch)
	w.U8(uint8(ct))
}

// readPrivateHeader reads what writePrivateHeader writes; ok is false
// after a read error or an unknown content type (which fails r).
func readPrivateHeader(r *codec.Reader) (groupID []byte, epoch uint64, ct ContentType, ok bool) {
	groupID = r.Opaque()
	epoch = r.U64()
	ct = ContentType(r.U8())
	if r.Err() != nil {
		return groupID, epoch, ct, false
	}
	if !ct.Valid() {
		r.Failf("wire: unknown content type %d", uint8(ct))
		return groupID, epoch, ct, false
	}
	return groupID, epoch, ct, true
}

// Marshal writes the message.
func (v *PrivateMessage) Marshal(w *codec.Writer) {
	writePrivateHeader(w, v.GroupID, v.Epoch, v.ContentType)
	w.Opaque(v.AuthenticatedData)
	w.Opaque(v.EncryptedSenderData)
	w.Opaque(v.Ciphertext)
}

// Unmarshal reads the message. An unknown content type is an error.
func (v *PrivateMessage) Unmarshal(r *codec.Reader) {
	*v = PrivateMessage{}
	var ok bool
	if v.GroupID, v.Epoch, v.ContentType, ok = readPrivateHeader(r); !ok {
		return
	}
	v.AuthenticatedData = r.Opaque()
	v.EncryptedSenderData = r.Opaque()
	v.Ciphertext = r.Opaque()
}

// PrivateMessageContent is the plaintext of PrivateMessage.ciphertext
// (RFC 9420 §6.3.1). ContentType is not on the wire: it comes from the
// enclosing PrivateMessage and must be set before Unmarshal. Padding is
// the number of zero bytes after the auth data; Unmarshal consumes all
// remaining input as padding and refuses any non-zero byte in it.
type PrivateMessageContent struct {
	ContentType ContentType
	Application []byte
	Proposal    *Proposal
	Commit      *Commit
	Auth        FramedContentAuthData
	Padding     int
}

// Marshal writes the content, the auth data and Padding zero bytes.
func (v *PrivateMessageContent) Marshal(w *codec.Writer) {
	marshalContentBody(w, v.ContentType, v.Application, v.Proposal, v.Commit)
	v.Auth.Marshal(w, v.ContentType)
	if v.Padding > 0 {
		w.Raw(make([]byte, v.Padding))
	}
}

// Unmarshal reads the content for v.ContentType and the padding, which
// extends to the end of r's input.
func (v *PrivateMessageContent) Unmarshal(r *codec.Reader) {
	ct := v.ContentType
	*v = PrivateMessageContent{ContentType: ct}
	v.Application, v.Proposal, v.Commit = unmarshalContentBody(r, ct)
	v.Auth.Unmarshal(r, ct)
	if r.Err() != nil {
		return
	}
	pad := r.Raw(r.Remaining())
	var acc byte
	for _, b := range pad {
		acc |= b
	}
	if acc != 0 {
		r.Failf("wire: non-zero byte in private message padding")
		return
	}
	v.Padding = len(pad)
}

// DecodePrivateMessageContent decodes the plaintext of a PrivateMessage
// whose content type is ct.
func DecodePrivateMessageContent(b []byte, ct ContentType) (*PrivateMessageContent, error) {
	v := &PrivateMessageContent{ContentType: ct}
	if err := Decode(b, v); err != nil {
		return nil, err
	}
	return v, nil
}

// SenderData is the plaintext of PrivateMessage.encrypted_sender_data
// (RFC 9420 §6.3.2).
type SenderData struct {
	LeafIndex  uint32
	Generation uint32
	ReuseGuard [4]byte
}

// Marshal writes the sender data.
func (v *SenderData) Marshal(w *codec.Writer) {
	w.U32(v.LeafIndex)
	w.U32(v.Generation)
	w.Raw(v.ReuseGuard[:])
}

// Unmarshal reads the sender data.
func (v *SenderData) Unmarshal(r *codec.Reader) {
	v.LeafIndex = r.U32()
	v.Generation = r.U32()
	if b := r.Raw(4); b != nil {
		copy(v.ReuseGuard[:], b)
	} else {
		v.ReuseGuard = [4]byte{}
	}
}

// SenderDataAAD is the associated data of the sender data encryption
// (RFC 9420 §6.3.2).
type SenderDataAAD struct {
	GroupID     []byte
	Epoch       uint64
	ContentType ContentType
}

// Marshal writes the AAD.
func (v *SenderDataAAD) Marshal(w *codec.Writer) {
	writePrivateHeader(w, v.GroupID, v.Epoch, v.ContentType)
}

// Unmarshal reads the AAD. An unknown content type is an error.
func (v *SenderDataAAD) Unmarshal(r *codec.Reader) {
	v.GroupID, v.Epoch, v.ContentType, _ = readPrivateHeader(r)
}

// PrivateContentAAD is the associated data of the content encryption
// (RFC 9420 §6.3.1).
type PrivateContentAAD struct {
	GroupID           []byte
	Epoch             uint64
	ContentType       ContentType
	AuthenticatedData []byte
}

// Marshal writes the AAD.
func (v *PrivateContentAAD) Marshal(w *codec.Writer) {
	writePrivateHeader(w, v.GroupID, v.Epoch, v.ContentType)
	w.Opaque(v.AuthenticatedData)
}

// Unmarshal reads the AAD. An unknown content type is an error.
func (v *PrivateContentAAD) Unmarshal(r *codec.Reader) {
	var ok bool
	if v.GroupID, v.Epoch, v.ContentType, ok = readPrivateHeader(r); ok {
		v.AuthenticatedData = r.Opaque()
	}
}

// SenderDataAADFor returns the encoded SenderDataAAD of a PrivateMessage.
func SenderDataAADFor(m *PrivateMessage) []byte {
	return Encode(&SenderDataAAD{GroupID: m.GroupID, Epoch: m.Epoch, ContentType: m.ContentType})
}

// PrivateContentAADFor returns the encoded PrivateContentAAD of a
// PrivateMessage.
func PrivateContentAADFor(m *PrivateMessage) []byte {
	return Encode(&PrivateContentAAD{
		GroupID:           m.GroupID,
		Epoch:             m.Epoch,
		ContentType:       m.ContentType,
		AuthenticatedData: m.AuthenticatedData,
	})
}
