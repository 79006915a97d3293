package wire

import "github.com/agwproject/agw/mls/codec"

// MLSMessage is the top-level message (RFC 9420 §6): the field matching
// WireFormat holds the body. Only version mls10 decodes.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// Marshal writes the message.
func (v *MLSMessage) Marshal(w *codec.Writer) {
	w.U16(uint16(v.Version))
	w.U16(uint16(v.WireFormat))
	var body Marshaler
	switch v.WireFormat {
	case WireFormatPublicMessage:
		body = orZero(v.PublicMessage)
	case WireFormatPrivateMessage:
		body = orZero(v.PrivateMessage)
	case WireFormatWelcome:
		body = orZero(v.Welcome)
	case WireFormatGroupInfo:
		body = orZero(v.GroupInfo)
	case WireFormatKeyPackage:
		body = orZero(v.KeyPackage)
	default:
		return
	}
	body.Marshal(w)
}

// Unmarshal reads the message. A version other than mls10 and an unknown
// wire format are errors.
func (v *MLSMessage) Unmarshal(r *codec.Reader) {
	*v = MLSMessage{Version: ProtocolVersion(r.U16()), WireFormat: WireFormat(r.U16())}
	if r.Err() != nil {
		return
	}
	if v.Version != MLS10 {
		r.Failf("wire: unsupported protocol version %d", uint16(v.Version))
		return
	}
	switch v.WireFormat {
	case WireFormatPublicMessage:
		v.PublicMessage = new(PublicMessage)
		v.PublicMessage.Unmarshal(r)
	case WireFormatPrivateMessage:
		v.PrivateMessage = new(PrivateMessage)
		v.PrivateMessage.Unmarshal(r)
	case WireFormatWelcome:
		v.Welcome = new(Welcome)
		v.Welcome.Unmarshal(r)
	case WireFormatGroupInfo:
		v.GroupInfo = new(GroupInfo)
		v.GroupInfo.Unmarshal(r)
	case WireFormatKeyPackage:
		v.KeyPackage = new(KeyPackage)
		v.KeyPackage.Unmarshal(r)
	default:
		r.Failf("wire: unknown wire format %d", uint16(v.WireFormat))
	}
}
