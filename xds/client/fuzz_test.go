package client

import (
	"strings"
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds"
)

// FuzzDecodeResource feeds arbitrary resource bodies to the client's
// decoder: no panic, and an accepted route always validates.
func FuzzDecodeResource(f *testing.F) {
	good, _ := proto.Marshal(&agpv1.TopicRoute{Topic: "t/x", Endpoints: []*agpv1.RouteEndpoint{{NodeId: "a", Address: "h:1", Status: 1}}})
	f.Add("t/x", good)
	f.Add("t/y", good)
	f.Add("*", []byte{})
	f.Add("t/x", []byte{0x12, 0xff})
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		r := &discovery.Resource{Name: name, Resource: &anypb.Any{TypeUrl: xds.TypeURL, Value: body}}
		route, err := decodeResource(r)
		if err != nil {
			return
		}
		if err := xds.ValidateRoute(name, route); err != nil {
			t.Fatalf("accepted invalid route: %v", err)
		}
	})
}

func TestDecodeResourceRejects(t *testing.T) {
	good, _ := proto.Marshal(&agpv1.TopicRoute{Topic: "t/x"})
	cases := map[string]*discovery.Resource{
		"nil":        nil,
		"no body":    {Name: "t/x"},
		"wrong type": {Name: "t/x", Resource: &anypb.Any{TypeUrl: "type.googleapis.com/x", Value: good}},
		"garbage":    {Name: "t/x", Resource: &anypb.Any{TypeUrl: xds.TypeURL, Value: []byte{0x0a, 0x50}}},
		"name":       {Name: "t/y", Resource: &anypb.Any{TypeUrl: xds.TypeURL, Value: good}},
	}
	for name, r := range cases {
		if _, err := decodeResource(r); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := decodeResource(&discovery.Resource{Name: "t/x", Resource: &anypb.Any{TypeUrl: xds.TypeURL, Value: good}}); err != nil {
		t.Fatalf("good resource rejected: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	err := cfg.Validate()
	for _, want := range []string{"AGW_XDS_SERVER", "AGW_XDS_NODE_ID", "AGW_XDS_ADVERTISE_ADDRESS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want mention of %s", err, want)
		}
	}
	cfg.Server, cfg.NodeID, cfg.AdvertiseAddress = "cp:18000", "node-a", "10.0.0.1:46358"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.BackoffMax = cfg.BackoffInitial / 2
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "AGW_XDS_BACKOFF_MAX") {
		t.Fatalf("backoff: %v", err)
	}
	if _, err := New(cfg); err == nil {
		t.Fatal("New accepted a bad config")
	}
}

func TestBackoffBounded(t *testing.T) {
	b := newBackoff(10, 100)
	for i := 0; i < 50; i++ {
		d := b.next()
		if d < 5 || d > 100 {
			t.Fatalf("delay %d out of bounds", d)
		}
	}
	b.reset()
	if d := b.next(); d > 10 {
		t.Fatalf("after reset: %d", d)
	}
}
