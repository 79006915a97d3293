package e2ee

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/wire"
)

// ExtensionNodeID is the private leaf extension (RFC 9420 §17.3 private
// use range) that carries a member's node id, signed with its leaf.
const ExtensionNodeID wire.ExtensionType = 0xF0A1

type groupKind uint8

const (
	kindP2P groupKind = iota + 1
	kindChannel
)

func (k groupKind) String() string {
	if k == kindP2P {
		return "p2p"
	}
	return "channel"
}

// group is one MLS group of this sidecar. mu serialises every use of g.
type group struct {
	mu   sync.Mutex
	kind groupKind
	name string // the peer node (p2p) or the topic (channel)
	gid  string // MLS group id

	g            *mls.Group
	nodes        []string // node id by leaf index ("" for a blank leaf)
	ids          []string // SPIFFE id by leaf index
	lastRotation time.Time
	sent         uint64 // messages sealed since the last rotation
	// minEpoch: Open refuses older epochs (a restored state may have
	// consumed generations after it was saved); Seal waits for an epoch
	// above it, since the sending generations of a restored epoch may have
	// been used already.
	minEpoch uint64
	restored bool
	// wakeup is closed and replaced when the epoch changes.
	wakeup chan struct{}
	// buffered commits of later epochs, applied after the next commit.
	future [][]byte
	// welcomes sent recently, by KeyPackage ref.
	welcomes []sentWelcome
	// joinBy: for a routed peer that is not a member, until when a sender
	// waits for it to join (SealChannel); the zero time for a peer whose
	// credential was refused. Cleared when the peer is a member.
	joinBy map[string]time.Time
	// freshFor: when the committer last rotated for a member's epoch
	// request; further requests from it within EpochWait (sent before
	// that commit reached it) are ignored.
	freshFor map[string]time.Time
	// ready is what a sender reads without mu (see publishReady).
	ready atomic.Pointer[readyState]
}

// readyState is a group's sending state as of its last epoch change: the
// fast path of PreparePeer and PrepareChannel reads it without the group's
// lock, which a seal holds while it signs.
type readyState struct {
	members []string // node ids of the members
	fresh   bool     // not a restored epoch (see minEpoch)
}

// publishReady publishes the group's readyState; call with mu held after
// every change of membership, epoch or restored flag.
func (gr *group) publishReady() {
	gr.ready.Store(&readyState{members: gr.memberNodes(""), fresh: !gr.restored || gr.g.Epoch() > gr.minEpoch})
}

func newGroup(kind groupKind, name string, g *mls.Group) (*group, error) {
	gr := &group{kind: kind, name: name, g: g, gid: string(g.GroupID()), wakeup: make(chan struct{}), joinBy: map[string]time.Time{}}
	if err := gr.refresh(); err != nil {
		return nil, err
	}
	return gr, nil
}

// refresh recomputes the node ids of the leaves; call with mu held after
// every epoch change.
func (gr *group) refresh() error {
	var rt wire.RatchetTree
	if err := wire.Decode(gr.g.RatchetTree(), &rt); err != nil {
		return fmt.Errorf("e2ee: decode ratchet tree: %w", err)
	}
	n := (len(rt) + 1) / 2
	nodes := make([]string, n)
	ids := make([]string, n)
	for i := 0; i < n; i++ {
		nd := rt[2*i]
		if nd == nil || nd.Leaf == nil {
			continue
		}
		nodes[i] = leafNodeID(nd.Leaf)
		ids[i] = leafSPIFFE(nd.Leaf)
	}
	gr.nodes, gr.ids = nodes, ids
	gr.publishReady()
	close(gr.wakeup)
	gr.wakeup = make(chan struct{})
	return nil
}

func leafNodeID(l *wire.LeafNode) string {
	if e := wire.FindExtension(l.Extensions, ExtensionNodeID); e != nil {
		return string(e.Data)
	}
	return ""
}

// memberNodes returns the node ids of the members other than skip, sorted
// by leaf.
func (gr *group) memberNodes(skip string) []string {
	var out []string
	for _, n := range gr.nodes {
		if n != "" && n != skip {
			out = append(out, n)
		}
	}
	return out
}

// leafOf returns the leaf of node, or -1.
func (gr *group) leafOf(node string) int {
	for i, n := range gr.nodes {
		if n == node {
			return i
		}
	}
	return -1
}

// committer is the member with the lowest node id: deterministic for
// every member of an epoch.
func (gr *group) committer() string {
	return lowest(gr.memberNodes(""))
}

func lowest(ns []string) string {
	min := ""
	for _, n := range ns {
		if n != "" && (min == "" || n < min) {
			min = n
		}
	}
	return min
}

// welcomeFor returns the Welcome sent for a KeyPackage ref, if recent.
func (gr *group) welcomeFor(ref []byte) []byte {
	for _, w := range gr.welcomes {
		if string(w.ref) == string(ref) {
			return w.welcome
		}
	}
	return nil
}

// rememberWelcome keeps the last few Welcomes, so a KeyPackage sent again
// (its Welcome was lost or is on its way) gets the same answer.
func (gr *group) rememberWelcome(ref, welcome []byte) {
	gr.welcomes = append(gr.welcomes, sentWelcome{ref: ref, welcome: welcome})
	if len(gr.welcomes) > 8 {
		gr.welcomes = gr.welcomes[1:]
	}
}

type sentWelcome struct{ ref, welcome []byte }
