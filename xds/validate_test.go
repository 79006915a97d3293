package xds

import (
	"errors"
	"strings"
	"testing"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

func TestValidateNodeID(t *testing.T) {
	good := []string{"a", "node-a", "default.agent-0", "ns_1.pod.x9", strings.Repeat("a", MaxNodeIDLen)}
	bad := map[string]string{
		"":                                  "empty",
		"Node":                              "lowercase",
		"-a":                                "character",
		"a-":                                "character",
		"a b":                               "character",
		"a/b":                               "character",
		strings.Repeat("a", MaxNodeIDLen+1): "limit",
	}
	for _, id := range good {
		if err := ValidateNodeID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for id, want := range bad {
		err := ValidateNodeID(id)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want error containing %q", id, err, want)
		}
	}
}

func TestValidateTopicAndAddress(t *testing.T) {
	for _, tp := range []string{"acme/prod/svc", "acme/prod/svc/0", "x", "ünïcode/ok"} {
		if err := ValidateTopic(tp); err != nil {
			t.Errorf("%q: %v", tp, err)
		}
	}
	for _, tp := range []string{"", "*", "a b", "a\nb", "\xff", strings.Repeat("x", MaxTopicLen+1)} {
		if err := ValidateTopic(tp); err == nil {
			t.Errorf("%q accepted", tp)
		}
	}
	for _, a := range []string{"10.0.0.1:46358", "[::1]:1", "node.svc:65535"} {
		if err := ValidateAddress(a); err != nil {
			t.Errorf("%q: %v", a, err)
		}
	}
	for _, a := range []string{"", ":46358", "host", "host:0", "host:70000", "host:x", "a b:1"} {
		if err := ValidateAddress(a); err == nil {
			t.Errorf("%q accepted", a)
		}
	}
}

func TestValidateRoute(t *testing.T) {
	ep := func(id, addr string, st agpv1.RouteEndpoint_Status) *agpv1.RouteEndpoint {
		return &agpv1.RouteEndpoint{NodeId: id, Address: addr, Status: st}
	}
	ok := &agpv1.TopicRoute{Topic: "t", Endpoints: []*agpv1.RouteEndpoint{ep("a", "h:1", 1), ep("b", "h:2", 2)}}
	if err := ValidateRoute("t", ok); err != nil {
		t.Fatal(err)
	}
	bad := []*agpv1.TopicRoute{
		nil,
		{Topic: "other", Endpoints: ok.Endpoints},
		{Topic: "t", Endpoints: []*agpv1.RouteEndpoint{nil}},
		{Topic: "t", Endpoints: []*agpv1.RouteEndpoint{ep("", "h:1", 1)}},
		{Topic: "t", Endpoints: []*agpv1.RouteEndpoint{ep("a", "h", 1)}},
		{Topic: "t", Endpoints: []*agpv1.RouteEndpoint{ep("a", "h:1", 0)}},
		{Topic: "t", Endpoints: []*agpv1.RouteEndpoint{ep("a", "h:1", 1), ep("a", "h:2", 1)}},
	}
	for i, r := range bad {
		if err := ValidateRoute("t", r); err == nil {
			t.Errorf("bad route %d accepted", i)
		}
	}
}

func TestNodeIdentity(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	id, err := NodeID("", env(map[string]string{"POD_NAMESPACE": "default", "POD_NAME": "agent-7f9c"}))
	if err != nil || id != "default.agent-7f9c" {
		t.Fatalf("NodeID from env = %q, %v", id, err)
	}
	if id, err := NodeID("node-a", env(nil)); err != nil || id != "node-a" {
		t.Fatalf("flag: %q %v", id, err)
	}
	for _, m := range []map[string]string{nil, {"POD_NAME": "x"}, {"POD_NAMESPACE": "X", "POD_NAME": "y"}} {
		if _, err := NodeID("", env(m)); err == nil {
			t.Errorf("env %v accepted", m)
		}
	}
	addr, err := AdvertiseAddress("", 46358, env(map[string]string{"POD_IP": "10.1.2.3"}))
	if err != nil || addr != "10.1.2.3:46358" {
		t.Fatalf("AdvertiseAddress = %q, %v", addr, err)
	}
	if addr, err := AdvertiseAddress("", 46358, env(map[string]string{"POD_IP": "fd00::1"})); err != nil || addr != "[fd00::1]:46358" {
		t.Fatalf("IPv6: %q %v", addr, err)
	}
	if _, err := AdvertiseAddress("", 46358, env(map[string]string{"POD_IP": "not-an-ip"})); err == nil {
		t.Fatal("bad POD_IP accepted")
	}
	if _, err := AdvertiseAddress("", 46358, env(nil)); err == nil {
		t.Fatal("missing POD_IP accepted")
	}
	if a, err := AdvertiseAddress("sidecar.local:1", 46358, env(nil)); err != nil || a != "sidecar.local:1" {
		t.Fatalf("flag: %q %v", a, err)
	}
}
