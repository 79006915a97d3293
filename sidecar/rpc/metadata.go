package rpc

import (
	"strings"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc/metadata"
)

// dropKey reports whether a metadata key is transport or hop-local and must
// not be carried: pseudo-headers, HTTP/2 and gRPC transport keys, trace
// context (each hop's tracing injects its own) and agw control keys.
func dropKey(k string) bool {
	if k == "" || k[0] == ':' || strings.HasPrefix(k, "grpc-") || strings.HasPrefix(k, "agw-") {
		return true
	}
	switch k {
	case "content-type", "user-agent", "te", "connection", "host", "traceparent", "tracestate", "baggage":
		return true
	}
	return false
}

// mdCarrier reads and writes trace context in gRPC metadata.
type mdCarrier metadata.MD

func (c mdCarrier) Get(k string) string {
	if v := metadata.MD(c).Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c mdCarrier) Set(k, v string) { metadata.MD(c).Set(k, v) }

func (c mdCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// validKey reports whether k is a legal gRPC metadata key.
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validValue reports whether v may be sent as a non-binary header value.
func validValue(v []byte) bool {
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// toWire converts gRPC metadata to frame metadata, leaving out keys that
// must not travel.
func toWire(md metadata.MD) *agpv1.RpcMetadata {
	if len(md) == 0 {
		return nil
	}
	out := &agpv1.RpcMetadata{}
	for k, vs := range md {
		if dropKey(k) || !validKey(k) {
			continue
		}
		e := &agpv1.RpcMetadataEntry{Key: k}
		for _, v := range vs {
			e.Values = append(e.Values, []byte(v))
		}
		out.Entries = append(out.Entries, e)
	}
	if len(out.Entries) == 0 {
		return nil
	}
	return out
}

// fromWire converts frame metadata to gRPC metadata, dropping keys and
// values that gRPC could not send.
func fromWire(w *agpv1.RpcMetadata) metadata.MD {
	md := metadata.MD{}
	for _, e := range w.GetEntries() {
		k := strings.ToLower(e.GetKey())
		if dropKey(k) || !validKey(k) {
			continue
		}
		bin := strings.HasSuffix(k, "-bin")
		for _, v := range e.GetValues() {
			if !bin && !validValue(v) {
				continue
			}
			md[k] = append(md[k], string(v))
		}
	}
	return md
}
