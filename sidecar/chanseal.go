package sidecar

import (
	"runtime"
	"sync/atomic"
	"time"
)

// A multicast is sealed once for all its peers, in its topic's channel,
// by that channel's sealer: a goroutine that drains the channel's queue
// of published messages, seals each run that goes to the same peers in one
// MLS message (see PeerCrypter) and queues the sealed message for each of
// them. Anycast messages are sealed the same way by their peer's session
// sealer, in runs that may mix destinations. Sealing apart from the peer
// writers lets a seal and the previous batch's send run at the same time.
// A sealer exists while its channel or session is in use and ends after
// sealerIdle without messages.

// sealJob is one multicast message waiting for its channel's seal.
type sealJob struct {
	w     *wmsg
	t0    int64
	peers []*peer // the targets, in route order (nil for a session's)
}

// chanSealer is the sealer of one channel (topic) or of the session with
// one peer (session); the map entry is guarded by Node.sealMu, which its
// end takes exclusively (users is read then).
type chanSealer struct {
	key     string // the topic, or sessionKey(peer)
	topic   string
	session *peer
	q       chan sealJob
	users   atomic.Int32 // forward calls about to queue a job
	pending atomic.Int32 // jobs queued or being sealed
	buf     []byte
}

// sealerIdle is how long a channel's sealer waits for messages before it
// ends.
const sealerIdle = 30 * time.Second

// sessionKey is the sealers' map key of the session with node: not a
// valid topic name.
func sessionKey(node string) string { return "\x00session:" + node }

// acquireSealer returns the sealer of topic's channel (session nil) or of
// the session with session, starting it if needed; the caller queues its
// job and then calls releaseSealer.
func (n *Node) acquireSealer(topic string, session *peer) *chanSealer {
	key := topic
	if session != nil {
		key = sessionKey(session.nodeID)
	}
	n.sealMu.RLock()
	cs := n.sealers[key]
	if cs != nil && (session == nil || cs.session == session) {
		// Under the read lock: a sealer ends only under the write lock,
		// and not while it has users.
		cs.users.Add(1)
		n.sealMu.RUnlock()
		return cs
	}
	n.sealMu.RUnlock()
	n.sealMu.Lock()
	defer n.sealMu.Unlock()
	cs = n.sealers[key]
	if cs == nil || (session != nil && cs.session != session) {
		if n.ctx.Err() != nil {
			return nil
		}
		// (A session sealer of a replaced peer, dropped when idle and then
		// found again, finishes what it holds and ends.)
		cs = &chanSealer{key: key, topic: topic, session: session, q: make(chan sealJob, n.cfg.QueueSize)}
		if session != nil {
			cs.topic = ""
		}
		if n.sealers == nil {
			n.sealers = map[string]*chanSealer{}
		}
		n.sealers[key] = cs
		n.wg.Go(func() { n.runSealer(cs) })
	}
	cs.users.Add(1)
	return cs
}

func (n *Node) releaseSealer(cs *chanSealer) { cs.users.Add(-1) }

// queueSeal queues w for its seal: a multicast to peers in its channel
// (session nil), or an anycast to session in their session (peers nil),
// waiting at most PeerQueueWait for room. It reports whether it was
// queued; if not, the drop is counted for each peer.
func (n *Node) queueSeal(w *wmsg, t0 int64, peers []*peer, session *peer) bool {
	cs := n.acquireSealer(w.dest, session)
	if cs == nil {
		return false
	}
	defer n.releaseSealer(cs)
	j := sealJob{w: w, t0: t0, peers: peers}
	w.ref()
	cs.pending.Add(1)
	select {
	case cs.q <- j:
		return true
	default:
	}
	if wait := n.cfg.PeerQueueWait; wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case cs.q <- j:
			return true
		case <-t.C:
		case <-n.ctx.Done():
		}
	}
	cs.pending.Add(-1)
	w.unref()
	if session != nil {
		peers = []*peer{session}
	}
	for _, p := range peers {
		p.drops.Add(1)
	}
	n.m.drop(DropPeerQueueFull, len(peers))
	return false
}

// runSealer serves cs until the node stops or cs has been idle for
// sealerIdle.
func (n *Node) runSealer(cs *chanSealer) {
	idle := time.NewTimer(sealerIdle)
	defer idle.Stop()
	jobs := make([]sealJob, 0, maxSealRun)
	for {
		select {
		case j := <-cs.q:
			jobs = append(jobs[:0], j)
			// Under load, let the publishers queue more before sealing: a
			// seal's signature and hashing cost little more for a longer
			// run. When nothing else is runnable this returns at once.
			if len(cs.q) < maxSealRun {
				runtime.Gosched()
			}
		drain:
			for len(jobs) < maxSealRun {
				select {
				case j := <-cs.q:
					jobs = append(jobs, j)
				default:
					break drain
				}
			}
			n.sealJobs(cs, jobs)
			cs.pending.Add(-int32(len(jobs)))
			clear(jobs)
			idle.Reset(sealerIdle)
		case <-idle.C:
			n.sealMu.Lock()
			if cs.users.Load() == 0 && len(cs.q) == 0 {
				if n.sealers[cs.key] == cs {
					delete(n.sealers, cs.key)
				}
				n.sealMu.Unlock()
				return
			}
			n.sealMu.Unlock()
			idle.Reset(sealerIdle)
		case <-n.ctx.Done():
			for {
				select {
				case j := <-cs.q:
					j.w.unref()
				default:
					return
				}
			}
		}
	}
}

// sealJobs seals jobs in runs that go to the same peers and fit the
// smallest size limit among them, and queues each sealed run for its peers.
func (n *Node) sealJobs(cs *chanSealer, jobs []sealJob) {
	for i := 0; i < len(jobs); {
		targets := jobs[i].peers
		if cs.session != nil {
			targets = []*peer{cs.session}
		}
		room := n.sealRoom(targets)
		size := batchEntrySize(jobs[i].w)
		j := i + 1
		for ; j < len(jobs); j++ {
			s := batchEntrySize(jobs[j].w)
			if !samePeers(jobs[j].peers, jobs[i].peers) || size+s > room {
				break
			}
			size += s
		}
		n.sealChannelRun(cs, jobs[i:j])
		i = j
	}
}

// sealRoom is the largest plaintext a seal for peers may hold.
func (n *Node) sealRoom(peers []*peer) int {
	limit := n.cfg.MaxMessageBytes
	for _, p := range peers {
		if m := int(p.maxMsg.Load()); m != 0 && m < limit {
			limit = m
		}
	}
	return limit - n.opts.crypter.SealOverhead()
}

func samePeers(a, b []*peer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sealChannelRun seals run (one destination, the same peers) once and
// queues it for each peer.
func (n *Node) sealChannelRun(cs *chanSealer, run []sealJob) {
	defer func() {
		for _, j := range run {
			j.w.unref()
		}
	}()
	peers, kind := run[0].peers, "channel"
	fan, dest, peerID := run[0].w.fanout, run[0].w.dest, ""
	if cs.session != nil {
		fan, peerID, peers, kind = 1, cs.session.nodeID, []*peer{cs.session}, "session"
	}
	sw, err := n.sealBatch(len(run), func(i int) []byte { return run[i].w.body }, peerID, cs.topic, dest, fan, &cs.buf)
	if err != nil {
		for _, p := range peers {
			p.drops.Add(uint64(len(run)))
		}
		n.m.drop(DropSealError, len(run)*len(peers))
		if logEvery(&n.sealLog, time.Now().UnixNano(), 5*time.Second) {
			n.log.Warn("messages not sealed, not sent to peers", "destination", dest, "messages", len(run), "peers", len(peers), "err", err)
		}
		return
	}
	defer sw.unref()
	n.m.sealRun[kind].Observe(float64(len(run)))
	for _, p := range peers {
		n.enqueueItem(p, peerItem{w: sw, t0: run[0].t0, n: int32(len(run))})
	}
}

// sealersIdle reports whether no channel sealer holds or seals a message.
func (n *Node) sealersIdle() bool {
	n.sealMu.RLock()
	defer n.sealMu.RUnlock()
	for _, cs := range n.sealers {
		if cs == nil {
			continue
		}
		if cs.users.Load() > 0 || cs.pending.Load() > 0 {
			return false
		}
	}
	return true
}

// maxSealRun bounds the messages a sealer takes from its queue at once,
// and so the messages in one seal.
const maxSealRun = 64
