package mls

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// Signature labels of RFC 9420 §6.1, §10 and §12.4.3.
const (
	labelFramedContent = "FramedContentTBS"
	labelKeyPackage    = "KeyPackageTBS"
	labelGroupInfo     = "GroupInfoTBS"
)

// framer protects and unprotects the messages of one epoch (RFC 9420 §6).
// It holds no tree: signature keys are looked up by the caller.
type framer struct {
	s                *suite.Suite
	groupID          []byte
	epoch            uint64
	ctx              []byte // encoded GroupContext of the epoch
	membershipKey    []byte
	senderDataSecret []byte
	keys             *schedule.SecretTree
}

// signContent signs content for the given wire format (RFC 9420 §6.1).
func (f *framer) signContent(sig *suite.Signer, wf wire.WireFormat, fc *wire.FramedContent) ([]byte, error) {
	tbs, err := wire.FramedContentTBSVec(wire.MLS10, wf, fc, f.ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	return signTBS(sig, tbs)
}

// signTBS signs a FramedContentTBS given as pieces (application data is
// hashed where it lies, never copied for ECDSA).
func signTBS(sig *suite.Signer, tbs [][]byte) ([]byte, error) {
	s, err := sig.SignWithLabelVec(labelFramedContent, tbs)
	if err != nil {
		return nil, fmt.Errorf("mls: sign content: %w", err)
	}
	return s, nil
}

// verifyContent checks the signature of ac with the sender's public key.
func (f *framer) verifyContent(pub []byte, ac *wire.AuthenticatedContent) error {
	tbs, err := wire.FramedContentTBSVec(wire.MLS10, ac.WireFormat, &ac.Content, f.ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := f.s.VerifyWithLabelVec(pub, labelFramedContent, tbs, ac.Auth.Signature); err != nil {
		return fmt.Errorf("%w: framed content: %w", ErrBadSignature, err)
	}
	return nil
}

// membershipTBM encodes AuthenticatedContentTBM, the input of a
// PublicMessage's membership tag (§6.2).
func (f *framer) membershipTBM(ac *wire.AuthenticatedContent) []byte {
	tbs := wire.FramedContentTBS(wire.MLS10, wire.WireFormatPublicMessage, &ac.Content, f.ctx)
	return wire.AuthenticatedContentTBM(tbs, &ac.Auth, ac.Content.ContentType)
}

// membershipTag computes the membership tag of a PublicMessage (§6.2).
func (f *framer) membershipTag(ac *wire.AuthenticatedContent) []byte {
	return f.s.MAC(f.membershipKey, f.membershipTBM(ac))
}

// protectPublic encodes a signed AuthenticatedContent as a PublicMessage,
// adding the membership tag for member senders.
func (f *framer) protectPublic(ac *wire.AuthenticatedContent) (*wire.PublicMessage, error) {
	if ac.Content.ContentType == wire.ContentTypeApplication {
		return nil, fmt.Errorf("%w: application data must be sent as PrivateMessage", ErrInvalidMessage)
	}
	pm := &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.Type == wire.SenderTypeMember {
		pm.MembershipTag = f.membershipTag(ac)
	}
	return pm, nil
}

// checkHeader checks group id and epoch of an incoming message.
func (f *framer) checkHeader(groupID []byte, epoch uint64) error {
	if string(groupID) != string(f.groupID) {
		return ErrWrongGroup
	}
	if epoch > f.epoch {
		return fmt.Errorf("%w: %w: message epoch %d, group epoch %d", ErrWrongEpoch, ErrFutureEpoch, epoch, f.epoch)
	}
	if epoch != f.epoch {
		return fmt.Errorf("%w: message epoch %d, group epoch %d", ErrWrongEpoch, epoch, f.epoch)
	}
	return nil
}

// unprotectPublic checks group, epoch and membership tag of a
// PublicMessage and returns its AuthenticatedContent. The signature is
// checked by the caller, which knows the sender's key.
func (f *framer) unprotectPublic(pm *wire.PublicMessage) (*wire.AuthenticatedContent, error) {
	if err := f.checkHeader(pm.Content.GroupID, pm.Content.Epoch); err != nil {
		return nil, err
	}
	ac := &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
	switch pm.Content.Sender.Type {
	case wire.SenderTypeMember:
		if !f.s.VerifyMAC(f.membershipKey, f.membershipTBM(ac), pm.MembershipTag) {
			return nil, ErrBadMembershipTag
		}
	}
	if pm.Content.ContentType == wire.ContentTypeApplication {
		return nil, fmt.Errorf("%w: application message sent as PublicMessage", ErrInvalidMessage)
	}
	return ac, nil
}

// senderDataKeys derives the sender data key and nonce (§6.3.2).
func (f *framer) senderDataKeys(ciphertext []byte) (key, nonce []byte) {
	return schedule.SenderDataKeyNonce(f.s, f.senderDataSecret, ciphertext)
}

// protectPrivate encrypts a signed AuthenticatedContent from member leaf
// as a PrivateMessage with padding zero bytes (§6.3).
func (f *framer) protectPrivate(ac *wire.AuthenticatedContent, leaf uint32, padding int) (*wire.PrivateMessage, error) {
	if ac.Content.Sender.Type != wire.SenderTypeMember {
		return nil, fmt.Errorf("%w: only members send PrivateMessage", ErrInvalidMessage)
	}
	ct := ac.Content.ContentType
	k, err := f.keys.Next(leaf, ratchetType(ct))
	if err != nil {
		return nil, ratchetError(err)
	}
	gen, key, nonce := k.Generation, k.Key, k.Nonce
	var guard [4]byte
	if _, err := rand.Read(guard[:]); err != nil {
		return nil, fmt.Errorf("mls: reuse guard: %w", err)
	}
	for i := range guard {
		nonce[i] ^= guard[i]
	}
	pm := &wire.PrivateMessage{
		GroupID:           ac.Content.GroupID,
		Epoch:             ac.Content.Epoch,
		ContentType:       ct,
		AuthenticatedData: ac.Content.AuthenticatedData,
	}
	plain := wire.Encode(&wire.PrivateMessageContent{
		ContentType: ct,
		Application: ac.Content.Application,
		Proposal:    ac.Content.Proposal,
		Commit:      ac.Content.Commit,
		Auth:        ac.Auth,
		Padding:     padding,
	})
	pm.Ciphertext, err = f.s.Seal(key, nonce, wire.PrivateContentAADFor(pm), plain)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("mls: encrypt content: %w", err)
	}
	sd := wire.Encode(&wire.SenderData{LeafIndex: leaf, Generation: gen, ReuseGuard: guard})
	sdKey, sdNonce := f.senderDataKeys(pm.Ciphertext)
	pm.EncryptedSenderData, err = f.s.Seal(sdKey, sdNonce, wire.SenderDataAADFor(pm), sd)
	if err != nil {
		return nil, fmt.Errorf("mls: encrypt sender data: %w", err)
	}
	return pm, nil
}

// sealApplication signs application data (the concatenation of app) as
// content fc of wire format PrivateMessage and appends the protected
// MLSMessage to dst (§6.1, §6.3). The content is written straight into
// the message and encrypted in place: the application data is read twice
// (signature, copy into the message) and copied once. dst's spare
// capacity must not overlap app or fc's fields.
func (f *framer) sealApplication(dst []byte, signer *suite.Signer, fc *wire.FramedContent, app [][]byte, padding int) ([]byte, error) {
	if fc.Sender.Type != wire.SenderTypeMember || fc.ContentType != wire.ContentTypeApplication {
		return nil, fmt.Errorf("%w: only members send application data", ErrInvalidMessage)
	}
	tbs, err := wire.ApplicationTBS(wire.MLS10, wire.WireFormatPrivateMessage, fc, app, f.ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	sig, err := signTBS(signer, tbs)
	if err != nil {
		return nil, err
	}
	appLen := 0
	for _, p := range app {
		appLen += len(p)
	}
	ptLen, err := wire.ApplicationContentLen(appLen, len(sig), padding)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	const sdLen = 4 + 4 + 4 // SenderData: leaf_index, generation, reuse_guard
	ovh := f.s.AEADOverhead()
	// Sizes are checked before a key is taken from the ratchet (group id
	// and authenticated data were by ApplicationTBS).
	if ptLen > codec.MaxVarint-ovh {
		return nil, fmt.Errorf("%w: application data of %d bytes: %w", ErrInvalidMessage, appLen, codec.ErrTooLong)
	}
	leaf := fc.Sender.LeafIndex
	k, err := f.keys.Next(leaf, ratchetType(fc.ContentType))
	if err != nil {
		return nil, ratchetError(err)
	}
	key, nonce := k.Key, k.Nonce
	defer clear(key)
	var guard [4]byte
	if _, err := rand.Read(guard[:]); err != nil {
		return nil, fmt.Errorf("mls: reuse guard: %w", err)
	}
	for i := range guard {
		nonce[i] ^= guard[i]
	}
	out, fr, err := wire.AppendPrivateMessage(dst, fc.GroupID, fc.Epoch, fc.ContentType, fc.AuthenticatedData, sdLen+ovh, ptLen+ovh)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	plain := fr.Ciphertext[:ptLen]
	if err := wire.PutApplicationContent(plain, app, sig, padding); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if _, err := f.s.SealAppend(plain[:0], key, nonce, fr.ContentAAD, plain); err != nil {
		return nil, fmt.Errorf("mls: encrypt content: %w", err)
	}
	sd := wire.Encode(&wire.SenderData{LeafIndex: leaf, Generation: k.Generation, ReuseGuard: guard})
	sdKey, sdNonce := f.senderDataKeys(fr.Ciphertext)
	if _, err := f.s.SealAppend(fr.EncryptedSenderData[:0], sdKey, sdNonce, fr.SenderDataAAD, sd); err != nil {
		return nil, fmt.Errorf("mls: encrypt sender data: %w", err)
	}
	return out, nil
}

// unprotectPrivate decrypts a PrivateMessage and returns its
// AuthenticatedContent; validLeaf reports whether a leaf index names a
// current member. The signature is checked by the caller.
func (f *framer) unprotectPrivate(pm *wire.PrivateMessage, validLeaf func(uint32) bool) (*wire.AuthenticatedContent, error) {
	return f.openPrivate(pm, validLeaf, false)
}

// openPrivate is unprotectPrivate; with inPlace it decrypts application
// content into pm.Ciphertext's own bytes (which it overwrites, even on
// failure) rather than a new buffer. The content returned aliases the
// decrypted bytes. Handshake content is always decrypted into a new
// buffer, as the group keeps parts of it.
func (f *framer) openPrivate(pm *wire.PrivateMessage, validLeaf func(uint32) bool, inPlace bool) (*wire.AuthenticatedContent, error) {
	if err := f.checkHeader(pm.GroupID, pm.Epoch); err != nil {
		return nil, err
	}
	sdKey, sdNonce := f.senderDataKeys(pm.Ciphertext)
	sdPlain, err := f.s.Open(sdKey, sdNonce, wire.SenderDataAADFor(pm), pm.EncryptedSenderData)
	if err != nil {
		return nil, fmt.Errorf("%w: sender data: %w", ErrDecrypt, err)
	}
	var sd wire.SenderData
	if err := wire.Decode(sdPlain, &sd); err != nil {
		return nil, fmt.Errorf("%w: sender data: %w", ErrMalformed, err)
	}
	if validLeaf != nil && !validLeaf(sd.LeafIndex) {
		return nil, fmt.Errorf("%w: leaf %d", ErrUnknownSender, sd.LeafIndex)
	}
	typ := ratchetType(pm.ContentType)
	k, err := f.keys.Peek(sd.LeafIndex, typ, sd.Generation)
	if err != nil {
		return nil, ratchetError(err)
	}
	key, nonce := k.Key, k.Nonce
	for i := range sd.ReuseGuard {
		nonce[i] ^= sd.ReuseGuard[i]
	}
	var dst []byte
	if inPlace && pm.ContentType == wire.ContentTypeApplication {
		dst = pm.Ciphertext[:0]
	}
	plain, err := f.s.OpenAppend(dst, key, nonce, wire.PrivateContentAADFor(pm), pm.Ciphertext)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("%w: content: %w", ErrDecrypt, err)
	}
	// plain is this call's own buffer (or given up by the caller): the
	// content may alias it.
	pc := &wire.PrivateMessageContent{ContentType: pm.ContentType}
	if err := wire.DecodeAlias(plain, pc); err != nil {
		return nil, fmt.Errorf("%w: content: %w", ErrMalformed, err)
	}
	// The key is consumed only once the content authenticated.
	if err := f.keys.Consume(sd.LeafIndex, typ, sd.Generation); err != nil {
		return nil, ratchetError(err)
	}
	return &wire.AuthenticatedContent{
		WireFormat: wire.WireFormatPrivateMessage,
		Content: wire.FramedContent{
			GroupID:           pm.GroupID,
			Epoch:             pm.Epoch,
			Sender:            wire.Sender{Type: wire.SenderTypeMember, LeafIndex: sd.LeafIndex},
			AuthenticatedData: pm.AuthenticatedData,
			ContentType:       pm.ContentType,
			Application:       pc.Application,
			Proposal:          pc.Proposal,
			Commit:            pc.Commit,
		},
		Auth: pc.Auth,
	}, nil
}

// decodeMessage decodes an MLSMessage. The result does not alias b,
// except for a PrivateMessage's encrypted_sender_data and ciphertext,
// which are only read while the message is processed (a large message is
// then not copied to be decoded).
func decodeMessage(b []byte) (*wire.MLSMessage, error) {
	var m wire.MLSMessage
	if len(b) < 4 || wire.WireFormat(binary.BigEndian.Uint16(b[2:4])) != wire.WireFormatPrivateMessage {
		if err := wire.Decode(b, &m); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return &m, nil
	}
	if err := wire.DecodeAlias(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	pm := m.PrivateMessage
	pm.GroupID = bytes.Clone(pm.GroupID)
	pm.AuthenticatedData = bytes.Clone(pm.AuthenticatedData)
	return &m, nil
}

// encodeMessage wraps a body in an MLSMessage and encodes it.
func encodeMessage(m *wire.MLSMessage) []byte {
	m.Version = wire.MLS10
	return wire.Encode(m)
}
