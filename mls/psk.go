package mls

import (
	"fmt"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// resumptionLookup returns the resumption secret of a group's epoch.
type resumptionLookup func(groupID []byte, epoch uint64) ([]byte, bool)

// resolvePSKs looks up the secrets of the PSK ids and returns the
// psk_secret (nil when ids is empty).
func resolvePSKs(s *suite.Suite, cfg *config, ids []wire.PreSharedKeyID, resumption resumptionLookup) ([]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > 0xffff {
		return nil, fmt.Errorf("%w: too many PSKs", ErrInvalidProposal)
	}
	secrets := make([][]byte, len(ids))
	for i := range ids {
		id := &ids[i]
		if len(id.PSKNonce) != s.Nh() {
			return nil, fmt.Errorf("%w: PSK nonce of %d bytes", ErrInvalidProposal, len(id.PSKNonce))
		}
		switch id.PSKType {
		case wire.PSKTypeExternal:
			sec, ok := cfg.psks[string(id.PSKID)]
			if !ok {
				return nil, fmt.Errorf("%w: external PSK %x", ErrMissingPSK, id.PSKID)
			}
			secrets[i] = sec
		case wire.PSKTypeResumption:
			var sec []byte
			var ok bool
			if resumption != nil {
				sec, ok = resumption(id.PSKGroupID, id.PSKEpoch)
			}
			if !ok {
				return nil, fmt.Errorf("%w: resumption PSK of epoch %d", ErrMissingPSK, id.PSKEpoch)
			}
			secrets[i] = sec
		default:
			return nil, fmt.Errorf("%w: PSK type %d", ErrInvalidProposal, id.PSKType)
		}
	}
	return pskSecret(s, ids, secrets)
}

// groupResumption looks up resumption secrets of g's own past epochs.
func (g *Group) groupResumption(groupID []byte, epoch uint64) ([]byte, bool) {
	if g.ctx.GroupID != nil && string(groupID) == string(g.ctx.GroupID) {
		return g.resumptionPSK(epoch)
	}
	return priorResumption(&g.cfg)(groupID, epoch)
}

// priorResumption looks up resumption secrets in the groups given with
// WithResumptionPSKFrom.
func priorResumption(cfg *config) resumptionLookup {
	return func(groupID []byte, epoch uint64) ([]byte, bool) {
		for _, p := range cfg.priorGroups {
			if string(p.ctx.GroupID) == string(groupID) {
				if sec, ok := p.resumptionPSK(epoch); ok {
					return sec, true
				}
			}
		}
		return nil, false
	}
}

// priorGroup returns the prior group with the given id.
func priorGroup(cfg *config, groupID []byte) *Group {
	for _, p := range cfg.priorGroups {
		if string(p.ctx.GroupID) == string(groupID) {
			return p
		}
	}
	return nil
}
