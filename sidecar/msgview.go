package sidecar

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Messages are forwarded without decoding them: msgView reads the header
// fields the node needs, checks the whole header as the protobuf library
// would (so an agent is never handed a message its decoder rejects), and a
// new body is the old header with the fields the node sets (hop_limit,
// message_id) appended to it (the last occurrence of a field wins), then the
// message's other fields unchanged.

const maxSegs = 4

var errFragmented = errors.New("message too fragmented for the fast path")

// msgView is an undecoded agpv1.Message.
type msgView struct {
	hdr    [maxSegs][]byte // encodings of the header field's occurrences
	nh     int
	rest   [maxSegs][]byte // encodings of the other fields
	nr     int
	dest   []byte
	src    []byte
	id     []byte
	fanout uint32
	hop    uint32
}

func addSeg(segs *[maxSegs][]byte, n *int, b []byte) error {
	if *n > 0 && sameBacking(segs[*n-1], b) {
		segs[*n-1] = segs[*n-1][:len(segs[*n-1])+len(b)]
		return nil
	}
	if *n == maxSegs {
		return errFragmented
	}
	segs[*n] = b
	*n++
	return nil
}

// parse reads an encoded agpv1.Message; it fails where proto.Unmarshal would.
func (v *msgView) parse(b []byte) error {
	for len(b) > 0 {
		num, typ, n, m, err := consumeField(b)
		if err != nil {
			return err
		}
		if num == 1 && typ == protowire.BytesType {
			h, _ := protowire.ConsumeBytes(b[n:])
			if err := v.parseHeader(h); err != nil {
				return err
			}
			if err := addSeg(&v.hdr, &v.nh, h); err != nil {
				return err
			}
		} else if err := addSeg(&v.rest, &v.nr, b[:n+m]); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}

// parseHeader reads one occurrence of the header field.
func (v *msgView) parseHeader(b []byte) error {
	for len(b) > 0 {
		num, typ, n, m, err := consumeField(b)
		if err != nil {
			return fmt.Errorf("header: %w", err)
		}
		val := b[n : n+m]
		switch {
		case (num == 1 || num == 2 || num == 5 || num == 7) && typ == protowire.BytesType:
			s, _ := protowire.ConsumeBytes(val)
			if !utf8.Valid(s) {
				return fmt.Errorf("%w: header field %d is not valid UTF-8", errMalformed, num)
			}
			switch num {
			case 1:
				v.src = s
			case 2:
				v.dest = s
			case 5:
				v.id = s
			}
		case (num == 3 || num == 4) && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(val)
			if num == 3 {
				v.fanout = uint32(x)
			} else {
				v.hop = uint32(x)
			}
		case num == 6 && typ == protowire.BytesType:
			e, _ := protowire.ConsumeBytes(val)
			if err := checkMapEntry(e); err != nil {
				return err
			}
		}
		b = b[n+m:]
	}
	return nil
}

// checkMapEntry checks a metadata entry (string key 1, string value 2).
func checkMapEntry(b []byte) error {
	for len(b) > 0 {
		num, typ, n, m, err := consumeField(b)
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			if s, _ := protowire.ConsumeBytes(b[n:]); !utf8.Valid(s) {
				return fmt.Errorf("%w: metadata is not valid UTF-8", errMalformed)
			}
		}
		b = b[n+m:]
	}
	return nil
}

// build encodes the message with hop_limit set to hop.
func (v *msgView) build(hop uint32) *wmsg { return v.buildWith(hop, true, "") }

// buildWith encodes the message, appending hop_limit (if setHop) and
// message_id (if id is not empty) to its header.
func (v *msgView) buildWith(hop uint32, setHop bool, id string) *wmsg {
	hl := 0
	if setHop {
		hl += 1 + protowire.SizeVarint(uint64(hop))
	}
	if id != "" {
		hl += 1 + protowire.SizeBytes(len(id))
	}
	for _, s := range v.hdr[:v.nh] {
		hl += len(s)
	}
	n := 1 + protowire.SizeVarint(uint64(hl)) + hl
	for _, s := range v.rest[:v.nr] {
		n += len(s)
	}
	var bufp *[]byte
	var body []byte
	if !mem.IsBelowBufferPoolingThreshold(n) {
		bufp = bodyPool.Get(n)
		body = (*bufp)[:0]
	} else {
		body = make([]byte, 0, n)
	}
	body = protowire.AppendTag(body, 1, protowire.BytesType)
	body = protowire.AppendVarint(body, uint64(hl))
	for _, s := range v.hdr[:v.nh] {
		body = append(body, s...)
	}
	if setHop {
		body = protowire.AppendTag(body, 4, protowire.VarintType)
		body = protowire.AppendVarint(body, uint64(hop))
	}
	if id != "" {
		body = protowire.AppendTag(body, 5, protowire.BytesType)
		body = protowire.AppendString(body, id)
	}
	for _, s := range v.rest[:v.nr] {
		body = append(body, s...)
	}
	w := newWmsg(body, bufp)
	w.fanout = v.fanout
	return w
}
