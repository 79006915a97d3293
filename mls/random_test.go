package mls

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// TestRandomOperations runs a seeded random sequence of adds, removes,
// updates (proposed and committed), empty commits, proposals by reference,
// PrivateMessage handshakes and state restores, checking after every
// epoch that all members agree.
func TestRandomOperations(t *testing.T) {
	for _, id := range shortSuites([]suite.ID{1, 2}) {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) { randomOperations(t, id, 100) })
	}
}

func randomOperations(t *testing.T, id suite.ID, rounds int) {
	rng := rand.New(rand.NewPCG(uint64(id), 42))
	alice, err := NewGroup(id, BasicCredential([]byte("m0")))
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGroup{t: t, members: map[string]*Group{"m0": alice}}
	next := 1
	names := func() []string {
		var ns []string
		for n := range tg.members {
			ns = append(ns, n)
		}
		slices.Sort(ns)
		return ns
	}
	newJoiners := func(k int) (map[string]*KeyPackageBundle, [][]byte) {
		js := map[string]*KeyPackageBundle{}
		var kps [][]byte
		for i := 0; i < k; i++ {
			name := fmt.Sprintf("m%d", next)
			next++
			js[name] = newKPB(t, id, name)
			kps = append(kps, js[name].Bytes())
		}
		return js, kps
	}
	js, kps := newJoiners(3)
	res, err := alice.Add(kps)
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("m0", res, js)
	var stats [3]int
	defer func() { t.Logf("%d epochs: %d added, %d removed, %d updated", rounds, stats[0], stats[1], stats[2]) }()
	for round := 0; round < rounds; round++ {
		ns := names()
		committer := ns[rng.IntN(len(ns))]
		cg := tg.members[committer]
		for _, n := range ns {
			tg.members[n].cfg.encryptHandshake = rng.IntN(2) == 0
		}
		var props []*wire.Proposal
		joiners := map[string]*KeyPackageBundle{}
		switch op := rng.IntN(6); {
		case op == 0 && len(ns) < 10:
			joiners, kps = newJoiners(1 + rng.IntN(2))
			for _, kp := range kps {
				p, err := AddProposal(kp)
				if err != nil {
					t.Fatal(err)
				}
				props = append(props, p)
			}
		case op == 1 && len(ns) > 2:
			victim := ns[rng.IntN(len(ns))]
			if victim != committer {
				props = append(props, RemoveProposal(tg.members[victim].LeafIndex()))
			}
		case op == 2:
			// Another member proposes an update, sent to everyone.
			proposer := ns[rng.IntN(len(ns))]
			if proposer != committer {
				msg, err := tg.members[proposer].ProposeUpdate()
				if err != nil {
					t.Fatal(err)
				}
				tg.deliver(proposer, msg, KindProposal)
			}
		case op == 3 && len(ns) > 2:
			// A removal proposed by reference.
			proposer := ns[rng.IntN(len(ns))]
			victim := ns[rng.IntN(len(ns))]
			if victim != committer && victim != proposer {
				msg, err := tg.members[proposer].ProposeRemove(tg.members[victim].LeafIndex())
				if err != nil {
					t.Fatal(err)
				}
				tg.deliver(proposer, msg, KindProposal)
			}
		case op == 4:
			// Persist and restore a random member.
			n := ns[rng.IntN(len(ns))]
			st, err := tg.members[n].MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			if tg.members[n], err = UnmarshalState(st); err != nil {
				t.Fatal(err)
			}
			if n == committer {
				cg = tg.members[n]
			}
		}
		var opts []Option
		if rng.IntN(2) == 0 {
			opts = append(opts, WithPath())
		}
		res, err := cg.Commit(props, opts...)
		if err != nil {
			t.Fatalf("round %d: %s commit: %v", round, committer, err)
		}
		tg.commit(committer, res, joiners)
		stats[0] += len(res.Info.Added)
		stats[1] += len(res.Info.Removed)
		stats[2] += len(res.Info.Updated)
		for n, g := range tg.members {
			if g.Removed() {
				delete(tg.members, n)
			}
		}
		tg.agree()
		if round%5 == 0 {
			tg.chat()
		}
	}
}
