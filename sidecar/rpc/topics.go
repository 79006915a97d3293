package rpc

import (
	"fmt"
	"net"
	"strings"

	"github.com/agwproject/agw/internal/names"
	"github.com/agwproject/agw/sidecar"
)

// ContentType marks AGP messages whose payload is an agpv1.RpcFrame.
const ContentType = "application/agp-rpc+proto"

// TopicPrefix is prepended to the organisation of an AGP name to form its
// RPC topic. Organisations that start with it are reserved.
const TopicPrefix = sidecar.RPCTopicPrefix

// Metadata keys the RPC layer reads or adds.
const (
	// MDTarget names the target AGP name (or an authority-map key); it
	// overrides the authority.
	MDTarget = "agw-target"
	// MDFanout "0" (or "all") makes a call multicast.
	MDFanout = "agw-fanout"
	// MDCaller is set on replayed calls: the AGP name of the calling agent.
	MDCaller = "agw-caller"
	// MDResponder is set in response headers (unicast) and, per message in
	// order, in multicast trailers.
	MDResponder = "agw-responder"
	// MDResponderStatus lists, in multicast trailers, "name code message"
	// for every member that answered.
	MDResponderStatus = "agw-responder-status"
	// MDExpected is the number of members a multicast call reached (response
	// headers).
	MDExpected = "agw-multicast-expected"
)

// Topic returns the RPC topic of the AGP name name.
func Topic(name string) (string, error) {
	if err := names.Validate(name); err != nil {
		return "", err
	}
	if IsReserved(name) {
		return "", fmt.Errorf("%q is already an RPC topic (organisations starting with %q are reserved)", name, TopicPrefix)
	}
	t := TopicPrefix + name
	if err := names.Validate(t); err != nil {
		return "", fmt.Errorf("name %q has no RPC topic: its organisation must be at most %d bytes: %w", name, names.MaxSegmentLen-len(TopicPrefix), err)
	}
	return t, nil
}

// IsReserved reports whether name lies in the reserved RPC namespace.
func IsReserved(name string) bool { return strings.HasPrefix(name, TopicPrefix) }

// Resolver maps a call's target (metadata key or authority) to an AGP name.
type Resolver struct {
	// Org is used for "service.namespace" authorities.
	Org string
	// Map holds explicit authority -> name entries.
	Map map[string]string
}

// Resolve returns the AGP name for a target: an explicit map entry (with or
// without port), a full AGP name, or service.namespace[.suffix] in r.Org.
func (r Resolver) Resolve(target string) (string, error) {
	t := strings.TrimSpace(target)
	if t == "" {
		return "", fmt.Errorf("no target: set the %s metadata key or dial with an authority such as writer.research", MDTarget)
	}
	if n, ok := r.Map[t]; ok {
		return n, nil
	}
	host := t
	if h, _, err := net.SplitHostPort(t); err == nil {
		host = h
	}
	if n, ok := r.Map[host]; ok {
		return n, nil
	}
	if strings.Contains(host, "/") {
		if err := names.Validate(host); err != nil {
			return "", fmt.Errorf("target %q: %w", target, err)
		}
		if IsReserved(host) {
			return "", fmt.Errorf("target %q is a reserved RPC topic, not an agent", target)
		}
		return host, nil
	}
	labels := strings.Split(host, ".")
	if len(labels) >= 2 && r.Org != "" {
		n := r.Org + "/" + labels[1] + "/" + labels[0]
		if names.Valid(n) {
			return n, nil
		}
	}
	return "", fmt.Errorf("target %q names no agent: use an AGP name org/namespace/service[/instance], service.namespace, or add it to AGW_AUTHORITY_MAP", target)
}
