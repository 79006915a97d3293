package schedule

import (
	"fmt"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/suite"
)

// PSK types and resumption usages of RFC 9420 §8.4.
const (
	PSKTypeExternal   uint8 = 1
	PSKTypeResumption uint8 = 2

	ResumptionUsageApplication uint8 = 1
	ResumptionUsageReinit      uint8 = 2
	ResumptionUsageBranch      uint8 = 3
)

// PSK is one pre-shared key for PSKSecret: ID is the encoded
// PreSharedKeyID (see ExternalPSKID and ResumptionPSKID, or the wire
// encoding of the proposal's PreSharedKeyID) and Secret the key itself.
type PSK struct {
	ID     []byte
	Secret []byte
}

// ExternalPSKID encodes PreSharedKeyID for an external PSK:
// psktype external (1), opaque psk_id<V>, opaque psk_nonce<V>.
func ExternalPSKID(pskID, nonce []byte) []byte {
	w := codec.NewWriter(1 + len(pskID) + len(nonce) + 8)
	w.U8(PSKTypeExternal)
	w.Opaque(pskID)
	w.Opaque(nonce)
	return w.MustBytes()
}

// ResumptionPSKID encodes PreSharedKeyID for a resumption PSK: psktype
// resumption (2), usage, opaque psk_group_id<V>, uint64 psk_epoch, opaque
// psk_nonce<V>.
func ResumptionPSKID(usage uint8, groupID []byte, epoch uint64, nonce []byte) []byte {
	w := codec.NewWriter(2 + len(groupID) + 8 + len(nonce) + 8)
	w.U8(PSKTypeResumption)
	w.U8(usage)
	w.Opaque(groupID)
	w.U64(epoch)
	w.Opaque(nonce)
	return w.MustBytes()
}

// PSKSecret chains the PSKs into psk_secret (RFC 9420 §8.4):
//
//	psk_extracted_[i] = Extract(0, psk_[i])
//	psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, Nh)
//	psk_secret_[i]    = Extract(psk_input_[i], psk_secret_[i-1])
//
// with PSKLabel { PreSharedKeyID id; uint16 index; uint16 count; } and
// psk_secret_[0] all zeros. No PSKs give Nh zero bytes.
func PSKSecret(s *suite.Suite, psks []PSK) ([]byte, error) {
	if len(psks) > 0xffff {
		return nil, fmt.Errorf("%w: %d PSKs (maximum 65535)", ErrLength, len(psks))
	}
	zero := make([]byte, s.Nh())
	secret := zero
	for i, p := range psks {
		label := make([]byte, 0, len(p.ID)+4)
		label = append(label, p.ID...)
		label = append(label, byte(i>>8), byte(i), byte(len(psks)>>8), byte(len(psks)))
		extracted := s.Extract(zero, p.Secret)
		input := s.ExpandWithLabel(extracted, "derived psk", label, s.Nh())
		next := s.Extract(input, secret)
		clear(extracted)
		clear(input)
		if i > 0 {
			clear(secret) // psk_secret_[i-1]; [0] is the shared zero vector
		}
		secret = next
	}
	return secret, nil
}
