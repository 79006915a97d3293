package xds

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"unicode"
	"unicode/utf8"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

// MaxNodeIDLen is the longest node id accepted: a Kubernetes namespace (63)
// plus '.' plus a pod name (253) fits.
const MaxNodeIDLen = 317

// MaxTopicLen is the longest topic accepted by the control plane.
const MaxTopicLen = 1024

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid")

// ValidateNodeID checks a node id. The rule: 1 to 317 characters, each a
// lowercase ASCII letter, a digit, '-', '.' or '_'; the first and last
// characters are a letter or a digit. This accepts "<namespace>.<pod name>"
// for any Kubernetes pod and short names such as "node-a".
func ValidateNodeID(id string) error {
	if id == "" {
		return fmt.Errorf("%w node id: empty; set POD_NAMESPACE and POD_NAME or give a node id such as \"default.agent-0\"", ErrInvalid)
	}
	if len(id) > MaxNodeIDLen {
		return fmt.Errorf("%w node id: %d characters, the limit is %d", ErrInvalid, len(id), MaxNodeIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if alnum {
			continue
		}
		if (c == '-' || c == '.' || c == '_') && i != 0 && i != len(id)-1 {
			continue
		}
		return fmt.Errorf("%w node id %q: character %q at %d; use lowercase letters, digits and inner '-', '.', '_'", ErrInvalid, truncate(id), c, i)
	}
	return nil
}

// ValidateTopic checks a topic as the control plane sees it: 1 to 1024 bytes
// of valid UTF-8 without whitespace or control characters, and not the xDS
// wildcard "*". (AGP name syntax is the sidecar's business; the control plane
// only needs names that are safe as xDS resource names.)
func ValidateTopic(topic string) error {
	if topic == "" {
		return fmt.Errorf("%w topic: empty", ErrInvalid)
	}
	if len(topic) > MaxTopicLen {
		return fmt.Errorf("%w topic: %d bytes, the limit is %d", ErrInvalid, len(topic), MaxTopicLen)
	}
	if topic == WildcardName {
		return fmt.Errorf("%w topic %q: reserved for xDS wildcard subscriptions", ErrInvalid, topic)
	}
	if !utf8.ValidString(topic) {
		return fmt.Errorf("%w topic %q: not valid UTF-8", ErrInvalid, truncate(topic))
	}
	for i, r := range topic {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%w topic %q: whitespace or control character at byte %d", ErrInvalid, truncate(topic), i)
		}
	}
	return nil
}

// ValidateAddress checks an advertised peer address: host:port with a
// non-empty host and a port in 1..65535 (other sidecars dial it, so ":46358"
// is not enough).
func ValidateAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w address %q: %v; use host:port such as 10.0.0.7:46358", ErrInvalid, truncate(addr), err)
	}
	if host == "" {
		return fmt.Errorf("%w address %q: empty host; other nodes dial it, use host:port such as 10.0.0.7:46358", ErrInvalid, truncate(addr))
	}
	for _, r := range host {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' {
			return fmt.Errorf("%w address %q: bad character in host", ErrInvalid, truncate(addr))
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w address %q: port must be 1-65535", ErrInvalid, truncate(addr))
	}
	return nil
}

// ValidateRoute checks a TopicRoute received under resource name name: the
// topic equals the name and is valid; each endpoint has a valid node id, a
// valid address, a known status, and no node appears twice.
func ValidateRoute(name string, r *agpv1.TopicRoute) error {
	if r == nil {
		return fmt.Errorf("%w route %q: nil", ErrInvalid, truncate(name))
	}
	if r.GetTopic() != name {
		return fmt.Errorf("%w route %q: topic field %q differs from the resource name", ErrInvalid, truncate(name), truncate(r.GetTopic()))
	}
	if err := ValidateTopic(name); err != nil {
		return err
	}
	seen := make(map[string]struct{}, len(r.GetEndpoints()))
	for i, ep := range r.GetEndpoints() {
		if ep == nil {
			return fmt.Errorf("%w route %q: endpoint %d is nil", ErrInvalid, truncate(name), i)
		}
		if err := ValidateNodeID(ep.GetNodeId()); err != nil {
			return fmt.Errorf("route %q endpoint %d: %w", truncate(name), i, err)
		}
		if err := ValidateAddress(ep.GetAddress()); err != nil {
			return fmt.Errorf("route %q endpoint %d: %w", truncate(name), i, err)
		}
		switch ep.GetStatus() {
		case agpv1.RouteEndpoint_STATUS_ACTIVE, agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL:
		default:
			return fmt.Errorf("%w route %q endpoint %d: unknown status %d", ErrInvalid, truncate(name), i, int32(ep.GetStatus()))
		}
		if _, dup := seen[ep.GetNodeId()]; dup {
			return fmt.Errorf("%w route %q: node %q appears twice", ErrInvalid, truncate(name), ep.GetNodeId())
		}
		seen[ep.GetNodeId()] = struct{}{}
	}
	return nil
}

// truncate keeps error messages short when the input is long.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
