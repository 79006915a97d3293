package schedule

import (
	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/suite"
)

// ConfirmedTranscriptHash returns Hash(interim_transcript_hash_[n-1] ||
// ConfirmedTranscriptHashInput_[n]) (RFC 9420 §8.2), with confirmedInput
// the encoded ConfirmedTranscriptHashInput (wire_format, FramedContent,
// signature).
func ConfirmedTranscriptHash(s *suite.Suite, interimPrev, confirmedInput []byte) []byte {
	b := make([]byte, 0, len(interimPrev)+len(confirmedInput))
	b = append(b, interimPrev...)
	b = append(b, confirmedInput...)
	return s.Hash(b)
}

// InterimTranscriptHash returns Hash(confirmed_transcript_hash_[n] ||
// InterimTranscriptHashInput_[n]) where InterimTranscriptHashInput is the
// confirmation tag encoded as opaque<V>.
func InterimTranscriptHash(s *suite.Suite, confirmed, confirmationTag []byte) []byte {
	b := make([]byte, 0, len(confirmed)+4+len(confirmationTag))
	b = append(b, confirmed...)
	b, _ = codec.AppendVarint(b, len(confirmationTag))
	b = append(b, confirmationTag...)
	return s.Hash(b)
}

// ConfirmationTag returns MAC(confirmation_key, confirmed_transcript_hash)
// (RFC 9420 §6.1).
func ConfirmationTag(s *suite.Suite, confirmationKey, confirmedTranscriptHash []byte) []byte {
	return s.MAC(confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag reports in constant time whether tag is the
// confirmation tag for the confirmed transcript hash.
func VerifyConfirmationTag(s *suite.Suite, confirmationKey, confirmedTranscriptHash, tag []byte) bool {
	return s.VerifyMAC(confirmationKey, confirmedTranscriptHash, tag)
}
