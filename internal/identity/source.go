package identity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Source holds the workload's current identity (a Snapshot) and keeps it up
// to date: Run polls the certificate, key, bundle and deny list files and
// applies changes without a restart. A changed certificate group (tls.crt,
// tls.key, ca.crt) is applied only if it parses, the key matches, and the
// certificate validates against the new bundle for both TLS client and
// server use; otherwise the previous snapshot stays in use and the error is
// counted, logged (paths and reasons, never key material) and returned by
// LastError. Subscribers learn every applied change.
//
// The Validator of a Source follows its bundle and deny list.
type Source struct {
	opts     options
	m        *sourceMetrics
	v        *Validator
	interval time.Duration
	memory   bool
	// collectors are registered once construction has succeeded.
	collectors []prometheus.Collector
	done       chan struct{}

	cur atomic.Pointer[Snapshot]

	mu          sync.Mutex // everything below; reloads run under it
	certFiles   [3]watchedFile
	certEnvs    [3]string
	denyFile    *watchedFile
	inlineDeny  *DenyList
	appliedCert [32]byte
	failedCert  [32]byte
	appliedDeny [32]byte
	failedDeny  [32]byte
	certErr     error
	denyErr     error
	polls       int
	// expiredWarned is the generation whose expiry was last logged.
	expiredWarned uint64
	gen           uint64
	subs          map[*subscriber]struct{}
	closed        bool
	running       bool
}

type subscriber struct{ ch chan Event }

// NewSource validates cfg, loads the files once (an error names the setting
// to fix) and returns a Source. Call Run to follow changes and Close when
// done.
func NewSource(cfg Config, opts ...Option) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := newSource(opts)
	cert, key, bundle := cfg.Paths()
	s.interval = cfg.ReloadInterval
	s.certFiles = [3]watchedFile{{path: cert}, {path: key}, {path: bundle}}
	s.certEnvs = [3]string{"AGW_IDENTITY_CERT_FILE", "AGW_IDENTITY_KEY_FILE", "AGW_IDENTITY_BUNDLE_FILE"}
	inline, err := NewDenyList(cfg.Deny...)
	if err != nil {
		return nil, fmt.Errorf("AGW_IDENTITY_DENY: %w", err)
	}
	s.inlineDeny = inline
	if cfg.DenyFile != "" {
		s.denyFile = &watchedFile{path: cfg.DenyFile}
	}
	svid, b, sum, err := s.readCertGroup()
	if err != nil {
		return nil, err
	}
	domains := cfg.TrustDomains
	if len(domains) == 0 {
		domains = []string{svid.ID.TrustDomain()}
	}
	if err := s.init(svid, b, domains); err != nil {
		return nil, err
	}
	s.appliedCert = sum
	if s.denyFile != nil {
		d, sum, err := s.readDeny()
		if err != nil {
			return nil, err
		}
		s.v.SetDenyList(d)
		s.appliedDeny = sum
	} else {
		s.v.SetDenyList(inline)
	}
	if err := s.checkOwn(svid, b, s.v.DenyList()); err != nil {
		return nil, err
	}
	if err := register(s.opts.reg, s.collectors); err != nil {
		return nil, err
	}
	return s, nil
}

// NewMemorySource returns a Source for an SVID held in memory (the demo,
// tests): no files, Run only waits, Rotate and SetDenyList change it.
// trustDomains defaults to the SVID's own.
func NewMemorySource(svid *SVID, bundle *Bundle, trustDomains []string, opts ...Option) (*Source, error) {
	if svid == nil || bundle == nil {
		return nil, errors.New("identity: memory source needs an SVID and a bundle")
	}
	s := newSource(opts)
	s.memory = true
	if len(trustDomains) == 0 {
		trustDomains = []string{svid.ID.TrustDomain()}
	}
	if err := s.init(svid, bundle, trustDomains); err != nil {
		return nil, err
	}
	if err := s.checkOwn(svid, bundle, nil); err != nil {
		return nil, err
	}
	if err := register(s.opts.reg, s.collectors); err != nil {
		return nil, err
	}
	return s, nil
}

func newSource(opts []Option) *Source {
	return &Source{opts: newOptions(opts), done: make(chan struct{}), subs: map[*subscriber]struct{}{}}
}

func (s *Source) init(svid *SVID, b *Bundle, domains []string) error {
	vm, vcs := newValidatorMetrics()
	v, err := newValidator(b, domains, s.opts, vm)
	if err != nil {
		return err
	}
	s.v = v
	s.gen = 1
	s.cur.Store(newSnapshot(svid, b, s.gen, s.opts.now()))
	m, scs := newSourceMetrics(s)
	s.m = m
	s.collectors = append(vcs, scs...)
	return nil
}

// checkOwn validates the workload's own SVID against a bundle for both TLS
// roles, so that a certificate peers would refuse is caught here.
func (s *Source) checkOwn(svid *SVID, b *Bundle, deny *DenyList) error {
	for _, u := range []Usage{UsageServer, UsageClient} {
		if _, err := s.v.validateWith(b, deny, svid.Certificates, u, s.opts.now()); err != nil {
			hint := ""
			switch {
			case errors.Is(err, ErrTrustDomain):
				hint = fmt.Sprintf("; add %q to AGW_IDENTITY_TRUST_DOMAINS", svid.ID.TrustDomain())
			case errors.Is(err, ErrUntrusted):
				hint = "; AGW_IDENTITY_BUNDLE_FILE must hold the CA that issued AGW_IDENTITY_CERT_FILE (put intermediates after the leaf in tls.crt)"
			case errors.Is(err, ErrKeyUsage):
				hint = "; issue the certificate with extended key usages serverAuth and clientAuth"
			}
			return fmt.Errorf("this workload's certificate (%s) as %s: %w%s", s.certFiles[0].path, u, err, hint)
		}
	}
	return nil
}

// readCertGroup reads and parses the certificate, key and bundle files.
func (s *Source) readCertGroup() (*SVID, *Bundle, [32]byte, error) {
	var data [3][]byte
	var errs [3]error
	for i := range s.certFiles {
		data[i], errs[i] = s.certFiles[i].read()
	}
	sum := contentSum(data[:], errs[:])
	for i, err := range errs {
		if err != nil {
			return nil, nil, sum, fmt.Errorf("%s: %w", s.certEnvs[i], err)
		}
	}
	svid, err := ParseSVIDPEM(data[0], data[1])
	if err != nil {
		return nil, nil, sum, fmt.Errorf("AGW_IDENTITY_CERT_FILE %q / AGW_IDENTITY_KEY_FILE %q: %w", s.certFiles[0].path, s.certFiles[1].path, err)
	}
	b, err := ParseBundlePEM(data[2])
	if err != nil {
		return nil, nil, sum, fmt.Errorf("AGW_IDENTITY_BUNDLE_FILE %q: %w", s.certFiles[2].path, err)
	}
	return svid, b, sum, nil
}

// readDeny reads the deny file and merges the inline entries.
func (s *Source) readDeny() (*DenyList, [32]byte, error) {
	data, err := s.denyFile.read()
	sum := contentSum([][]byte{data}, []error{err})
	if err != nil {
		return nil, sum, fmt.Errorf("AGW_IDENTITY_DENY_FILE: %w", err)
	}
	d, err := ParseDenyList(data)
	if err != nil {
		return nil, sum, fmt.Errorf("AGW_IDENTITY_DENY_FILE %q: %w", s.denyFile.path, err)
	}
	return d.Merge(s.inlineDeny), sum, nil
}

// Current returns the current snapshot (never nil).
func (s *Source) Current() *Snapshot { return s.cur.Load() }

// Validator returns the validator that follows this source's bundle and
// deny list.
func (s *Source) Validator() *Validator { return s.v }

// LastError returns why the files on disk are not in use, or nil when the
// current snapshot and deny list reflect them.
func (s *Source) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.certErr, s.denyErr)
}

// Subscribe returns a channel that receives an Event after every applied
// change, and a function that ends the subscription and closes the
// channel. The channel holds one event: if the subscriber is slow, newer
// events coalesce into it (Changes merged, latest state). Close closes every
// subscription's channel.
func (s *Source) Subscribe() (<-chan Event, func()) {
	sub := &subscriber{ch: make(chan Event, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(sub.ch)
		return sub.ch, func() {}
	}
	s.subs[sub] = struct{}{}
	return sub.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
}

// notify sends ev to every subscriber; s.mu is held, so this is the only
// sender and the drain-then-send below cannot block.
func (s *Source) notify(ev Event) {
	for sub := range s.subs {
		select {
		case sub.ch <- ev:
			continue
		default:
		}
		merged := ev
		select {
		case old := <-sub.ch:
			merged.Changes |= old.Changes
		default:
		}
		select {
		case sub.ch <- merged:
		default:
		}
	}
}

// Run polls the files every reload interval until ctx is done or Close is
// called, then returns nil. Only one Run may be active.
func (s *Source) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.running {
		s.mu.Unlock()
		return errors.New("identity: Source.Run is already running")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	if s.memory {
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		return nil
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case <-t.C:
			_, _ = s.reload(false)
		}
	}
}

// Reload checks all files now (even those that look unchanged, and
// content that failed before) and applies changes. It returns what changed
// and why new content was refused. Useful on SIGHUP and in tests.
func (s *Source) Reload() (Change, error) { return s.reload(true) }

func (s *Source) reload(force bool) (Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if s.memory {
		return 0, nil
	}
	s.polls++
	full := force || s.polls%fullReadEvery == 0
	var changes Change
	var errs []error
	if full || s.certFiles[0].changed() || s.certFiles[1].changed() || s.certFiles[2].changed() {
		c, err := s.reloadCerts(force)
		changes |= c
		errs = append(errs, err)
	}
	if s.denyFile != nil && (full || s.denyFile.changed()) {
		c, err := s.reloadDeny(force)
		changes |= c
		errs = append(errs, err)
	}
	if snap := s.cur.Load(); s.expiredWarned != snap.Generation() && s.opts.now().After(snap.NotAfter()) {
		s.expiredWarned = snap.Generation()
		s.opts.log.Error("this workload's certificate has expired and no valid replacement was found; peers refuse it",
			"spiffe_id", snap.ID().String(), "serial", serialHex(snap.Leaf()), "not_after", snap.NotAfter(), "cert_file", s.certFiles[0].path)
	}
	if changes != 0 {
		s.m.reloads.Inc()
		snap := s.cur.Load()
		s.opts.log.Info("identity reloaded", "changes", changes.String(), "spiffe_id", snap.ID().String(),
			"serial", serialHex(snap.Leaf()), "sha256", snap.Fingerprint().String(), "not_after", snap.NotAfter(),
			"generation", snap.Generation(), "deny_entries", s.v.DenyList().Len())
		s.notify(Event{Changes: changes, Snapshot: snap, DenyList: s.v.DenyList()})
	}
	return changes, errors.Join(errs...)
}

func (s *Source) reloadCerts(force bool) (Change, error) {
	svid, b, sum, err := s.readCertGroup()
	if sum == s.appliedCert {
		s.certErr = nil
		return 0, nil
	}
	if !force && sum == s.failedCert {
		return 0, nil // already reported
	}
	if err == nil {
		err = s.checkOwn(svid, b, s.v.DenyList())
	}
	if err != nil {
		s.failedCert = sum
		s.certErr = err
		s.m.reloadErrors.Inc()
		s.opts.log.Error("identity reload failed; keeping the previous certificate and bundle", "error", err)
		return 0, err
	}
	old := s.cur.Load()
	var c Change
	if !old.Leaf().Equal(svid.Leaf()) || !publicKeysEqual(old.Signer().Public(), svid.PrivateKey.Public()) {
		c |= ChangeCertificate
	}
	if !old.Bundle().equal(b) {
		c |= ChangeBundle
	}
	s.appliedCert, s.certErr = sum, nil
	if c == 0 {
		return 0, nil // same content, re-encoded
	}
	s.gen++
	s.v.SetBundle(b)
	s.cur.Store(newSnapshot(svid, b, s.gen, s.opts.now()))
	return c, nil
}

func (s *Source) reloadDeny(force bool) (Change, error) {
	d, sum, err := s.readDeny()
	if sum == s.appliedDeny {
		s.denyErr = nil
		return 0, nil
	}
	if !force && sum == s.failedDeny {
		return 0, nil
	}
	if err != nil {
		s.failedDeny = sum
		s.denyErr = err
		s.m.reloadErrors.Inc()
		s.opts.log.Error("deny list reload failed; keeping the previous deny list", "error", err)
		return 0, err
	}
	s.appliedDeny, s.denyErr = sum, nil
	s.v.SetDenyList(d)
	snap := s.cur.Load()
	if err := d.Check(snap.ID(), snap.Chain()); err != nil {
		s.opts.log.Error("this workload's own certificate is on the deny list; peers will refuse it until it is replaced", "error", err)
	}
	return ChangeDenyList, nil
}

// Rotate replaces the SVID (and the bundle, unless nil) of a memory
// source, after the same checks as a file reload, and notifies subscribers.
func (s *Source) Rotate(svid *SVID, bundle *Bundle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.memory {
		return errors.New("identity: Rotate is for memory sources; a file source follows its files")
	}
	if svid == nil {
		return errors.New("identity: Rotate needs an SVID")
	}
	old := s.cur.Load()
	if bundle == nil {
		bundle = old.Bundle()
	}
	if err := s.checkOwn(svid, bundle, s.v.DenyList()); err != nil {
		s.m.reloadErrors.Inc()
		return err
	}
	c := ChangeCertificate
	if !old.Bundle().equal(bundle) {
		c |= ChangeBundle
	}
	s.gen++
	s.v.SetBundle(bundle)
	snap := newSnapshot(svid, bundle, s.gen, s.opts.now())
	s.cur.Store(snap)
	s.m.reloads.Inc()
	s.notify(Event{Changes: c, Snapshot: snap, DenyList: s.v.DenyList()})
	return nil
}

// SetDenyList replaces the deny list of a memory source and notifies
// subscribers.
func (s *Source) SetDenyList(d *DenyList) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.memory {
		return errors.New("identity: SetDenyList is for memory sources; a file source follows AGW_IDENTITY_DENY_FILE")
	}
	s.v.SetDenyList(d)
	s.m.reloads.Inc()
	s.notify(Event{Changes: ChangeDenyList, Snapshot: s.cur.Load(), DenyList: s.v.DenyList()})
	return nil
}

// Close stops Run and closes every subscription. The last snapshot, the
// validator and TLS configurations keep working. Close is idempotent.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	for sub := range s.subs {
		close(sub.ch)
		delete(s.subs, sub)
	}
	return nil
}
