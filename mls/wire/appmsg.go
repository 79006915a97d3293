package wire

import (
	"fmt"

	"github.com/agwproject/agw/mls/codec"
)

// This file holds the pieces of a large application message's encoding
// that let package mls sign, encrypt and decrypt it without copying the
// application data more than once each way: the FramedContentTBS as a list
// of pieces (the application data and group context not copied), the
// MLSMessage of a PrivateMessage laid out with room for its encrypted
// fields, and decoding that aliases its input.

// DecodeAlias decodes b into u like Decode, but without copying b: byte
// slices in the decoded value alias b, which must not change while the
// value is in use.
func DecodeAlias(b []byte, u Unmarshaler) error {
	r := codec.NewReader(b)
	u.Unmarshal(r)
	if err := r.Finish(); err != nil {
		return fmt.Errorf("mls wire: decode %T: %w", u, err)
	}
	return nil
}

// vecLen returns the total length of parts.
func vecLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// ApplicationTBS returns the FramedContentTBS (RFC 9420 §6.1) of an
// application message as pieces whose concatenation is its encoding: a
// head holding every field before the application data, the pieces of
// app (whose concatenation is the application data; content.Application
// is ignored), and groupContext for member and new_member_commit senders.
// app and groupContext are not copied. content.ContentType must be
// application.
func ApplicationTBS(version ProtocolVersion, wireFormat WireFormat, content *FramedContent, app [][]byte, groupContext []byte) ([][]byte, error) {
	if content.ContentType != ContentTypeApplication {
		return nil, fmt.Errorf("mls wire: ApplicationTBS of %v content", content.ContentType)
	}
	w := codec.NewWriter(32 + len(content.GroupID) + len(content.AuthenticatedData))
	w.U16(uint16(version))
	w.U16(uint16(wireFormat))
	w.Opaque(content.GroupID)
	w.U64(content.Epoch)
	content.Sender.Marshal(w)
	w.Opaque(content.AuthenticatedData)
	w.U8(uint8(content.ContentType))
	head, err := w.Bytes()
	if err == nil {
		head, err = codec.AppendVarint(head, vecLen(app))
	}
	if err != nil {
		return nil, fmt.Errorf("mls wire: application message: %w", err)
	}
	out := make([][]byte, 0, len(app)+2)
	out = append(out, head)
	out = append(out, app...)
	switch content.Sender.Type {
	case SenderTypeMember, SenderTypeNewMemberCommit:
		out = append(out, groupContext)
	}
	return out, nil
}

// FramedContentTBSVec is FramedContentTBS as pieces: for application
// content those of ApplicationTBS (the application data not copied), for
// other content a single piece.
func FramedContentTBSVec(version ProtocolVersion, wireFormat WireFormat, content *FramedContent, groupContext []byte) ([][]byte, error) {
	if content.ContentType == ContentTypeApplication {
		return ApplicationTBS(version, wireFormat, content, [][]byte{content.Application}, groupContext)
	}
	w := codec.NewWriter(256 + len(groupContext))
	w.U16(uint16(version))
	w.U16(uint16(wireFormat))
	content.Marshal(w)
	switch content.Sender.Type {
	case SenderTypeMember, SenderTypeNewMemberCommit:
		w.Raw(groupContext)
	}
	b, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls wire: framed content: %w", err)
	}
	return [][]byte{b}, nil
}

// ApplicationContentLen returns the length of the encoded
// PrivateMessageContent (RFC 9420 §6.3.1) of an application message with
// appLen bytes of application data, a signature of sigLen bytes and
// padding zero bytes.
func ApplicationContentLen(appLen, sigLen, padding int) (int, error) {
	if appLen < 0 || appLen > codec.MaxVarint || sigLen < 0 || sigLen > codec.MaxVarint || padding < 0 {
		return 0, fmt.Errorf("mls wire: application content: %w", codec.ErrTooLong)
	}
	n := codec.VarintLen(appLen) + appLen + codec.VarintLen(sigLen) + sigLen + padding
	if n > codec.MaxVarint {
		return 0, fmt.Errorf("mls wire: application content: %w", codec.ErrTooLong)
	}
	return n, nil
}

// PutApplicationContent writes the PrivateMessageContent of an application
// message (the concatenation of app, sig and padding zero bytes) to dst,
// which must be exactly ApplicationContentLen(len of app, len(sig),
// padding) long and must not overlap app or sig.
func PutApplicationContent(dst []byte, app [][]byte, sig []byte, padding int) error {
	appLen := vecLen(app)
	n, err := ApplicationContentLen(appLen, len(sig), padding)
	if err != nil {
		return err
	}
	if len(dst) != n {
		return fmt.Errorf("mls wire: application content is %d bytes, buffer %d", n, len(dst))
	}
	b, _ := codec.AppendVarint(dst[:0], appLen)
	for _, p := range app {
		b = append(b, p...)
	}
	b, _ = codec.AppendVarint(b, len(sig))
	b = append(b, sig...)
	clear(dst[len(b):])
	return nil
}

// PrivateFrame locates the parts of an MLSMessage laid out by
// AppendPrivateMessage, as sub-slices of the message.
type PrivateFrame struct {
	// EncryptedSenderData and Ciphertext are the reserved bytes of the
	// two encrypted fields.
	EncryptedSenderData []byte
	Ciphertext          []byte
	// SenderDataAAD and ContentAAD are the encoded SenderDataAAD and
	// PrivateContentAAD (§6.3), which are prefixes of the PrivateMessage.
	SenderDataAAD []byte
	ContentAAD    []byte
}

// AppendPrivateMessage appends to dst the MLSMessage (version mls10) of a
// PrivateMessage with the given header fields and room for sdLen bytes of
// encrypted sender data and ctLen bytes of ciphertext, whose bytes are
// left for the caller to write (they hold whatever dst's spare capacity
// held). It allocates at most once, exactly sized.
func AppendPrivateMessage(dst, groupID []byte, epoch uint64, ct ContentType, ad []byte, sdLen, ctLen int) ([]byte, PrivateFrame, error) {
	for _, n := range []int{len(groupID), len(ad), sdLen, ctLen} {
		if n < 0 || n > codec.MaxVarint {
			return nil, PrivateFrame{}, fmt.Errorf("mls wire: private message: %w", codec.ErrTooLong)
		}
	}
	size := 4 + codec.VarintLen(len(groupID)) + len(groupID) + 8 + 1 +
		codec.VarintLen(len(ad)) + len(ad) + codec.VarintLen(sdLen) + sdLen + codec.VarintLen(ctLen) + ctLen
	start := len(dst)
	if cap(dst)-start < size {
		b := make([]byte, start, start+size)
		copy(b, dst)
		dst = b
	}
	b := dst
	b = append(b, byte(MLS10>>8), byte(MLS10), byte(WireFormatPrivateMessage>>8), byte(WireFormatPrivateMessage))
	hdr := len(b)
	b, _ = codec.AppendVarint(b, len(groupID))
	b = append(b, groupID...)
	b = append(b, byte(epoch>>56), byte(epoch>>48), byte(epoch>>40), byte(epoch>>32),
		byte(epoch>>24), byte(epoch>>16), byte(epoch>>8), byte(epoch), uint8(ct))
	sdAAD := len(b)
	b, _ = codec.AppendVarint(b, len(ad))
	b = append(b, ad...)
	ctAAD := len(b)
	b, _ = codec.AppendVarint(b, sdLen)
	sd := len(b)
	b, _ = codec.AppendVarint(b[:sd+sdLen], ctLen)
	c := len(b)
	b = b[:c+ctLen]
	return b, PrivateFrame{
		EncryptedSenderData: b[sd : sd+sdLen : sd+sdLen],
		Ciphertext:          b[c : c+ctLen : c+ctLen],
		SenderDataAAD:       b[hdr:sdAAD:sdAAD],
		ContentAAD:          b[hdr:ctAAD:ctAAD],
	}, nil
}
