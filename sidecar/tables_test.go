package sidecar

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
)

type sinkRec struct {
	mu  sync.Mutex
	evs []string
}

func (s *sinkRec) TopicAdded(t string)   { s.mu.Lock(); s.evs = append(s.evs, "+"+t); s.mu.Unlock() }
func (s *sinkRec) TopicRemoved(t string) { s.mu.Lock(); s.evs = append(s.evs, "-"+t); s.mu.Unlock() }

func TestSubTable(t *testing.T) {
	sink := &sinkRec{}
	n := newTestNode(t, testNodeCfg("a"), WithSubscriptionSink(sink))
	c1, c2 := n.testConn(t), n.testConn(t)
	st := n.subs
	if !st.add("o/n/s", c1) || st.add("o/n/s", c1) {
		t.Fatal("add / duplicate add")
	}
	st.add("o/n/s", c2)
	st.add("o/n/t", c2)
	if got := st.lookup("o/n/s").load(); !slices.Equal(got, []*agentConn{c1, c2}) {
		t.Fatalf("lookup = %v", got)
	}
	// A reader's slice is not changed by later writes (copy-on-write).
	snap := st.lookup("o/n/s").load()
	if !st.remove("o/n/s", c1) || st.remove("o/n/s", c1) {
		t.Fatal("remove / duplicate remove")
	}
	if len(snap) != 2 || snap[0] != c1 {
		t.Fatal("snapshot modified by remove")
	}
	st.remove("o/n/s", c2)
	if st.lookup("o/n/s") != nil {
		t.Fatal("empty topic kept")
	}
	if got := st.Topics(); !slices.Equal(got, []string{"o/n/t"}) {
		t.Fatalf("topics %v", got)
	}
	want := []string{"+o/n/s", "+o/n/t", "-o/n/s"}
	if !slices.Equal(sink.evs, want) {
		t.Fatalf("sink events %v, want %v", sink.evs, want)
	}
	js, err := json.Marshal(st)
	if err != nil || !strings.Contains(string(js), `"o/n/t":[{"conn_id":`) {
		t.Fatalf("json %s %v", js, err)
	}
}

func TestSubTableConcurrent(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	conns := []*agentConn{n.testConn(t), n.testConn(t), n.testConn(t), n.testConn(t)}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for range 200 {
				n.subs.add("o/n/s", c)
				_ = n.subs.lookup("o/n/s")
				if i%2 == 0 {
					n.subs.remove("o/n/s", c)
				}
			}
		})
	}
	wg.Wait()
	if got := len(n.subs.lookup("o/n/s").load()); got != 2 {
		t.Fatalf("%d subscribers left, want 2", got)
	}
}

func TestConnTable(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	c := n.testConn(t)
	c.countIn(10, 1e9)
	c.countOut(20, 2e9)
	c.drops.Add(3)
	n.subscribe(c, 1, "o/n/s")
	p := n.peerFor("b", "", false)
	if p == nil {
		t.Fatal("no peer")
	}
	rows := n.Connections()
	if len(rows) != 2 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	if r.ID != c.id || r.Kind != KindAgent || r.Status != StatusUp || r.Counters != (ConnCounters{MsgsIn: 1, MsgsOut: 1, BytesIn: 10, BytesOut: 20, Drops: 3}) ||
		r.Subscriptions != 1 || r.QueueSize != 8 || r.LastActivity.UnixNano() != 2e9 || r.ProtocolVersion != 1 {
		t.Fatalf("agent row %+v", r)
	}
	if rows[1].Kind != KindPeer || rows[1].NodeID != "b" || rows[1].Status != StatusDown {
		t.Fatalf("peer row %+v", rows[1])
	}
	js, err := json.Marshal(n.conns)
	if err != nil || !strings.Contains(string(js), `"kind":"agent","status":"up"`) || !strings.Contains(string(js), `"node_id":"b"`) {
		t.Fatalf("json %s %v", js, err)
	}
	n.conns.remove(c.id)
	if n.conns.Len() != 1 {
		t.Fatal("remove")
	}
}

func TestTrackLink(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	h := n.TrackLink(KindControlPlane, "cp:18000")
	h.SetStatus(StatusUp)
	h.CountIn(5)
	h.CountOut(7)
	rows := n.Connections()
	if len(rows) != 1 || rows[0].Kind != KindControlPlane || rows[0].Status != StatusUp || rows[0].RemoteAddress != "cp:18000" ||
		rows[0].Counters.BytesIn != 5 || rows[0].Counters.BytesOut != 7 {
		t.Fatalf("rows %+v", rows)
	}
	h.Close()
	if n.conns.Len() != 0 {
		t.Fatal("not removed")
	}
}
