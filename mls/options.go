package mls

import (
	"time"

	"github.com/agwproject/agw/mls/wire"
)

// Option configures GenerateKeyPackage, NewGroup, Join, JoinExternal,
// UnmarshalState and commits. Each function uses the options that concern
// it and ignores the others.
type Option func(*config)

// CredentialValidator is the application's Authentication Service hook
// (RFC 9420 §5.3.1): it is called for every credential that enters the
// group (tree leaves, key packages, updates, external senders) with the
// credential and the signature key it is bound to. A non-nil error refuses
// the message or join.
type CredentialValidator func(cred wire.Credential, signatureKey []byte) error

type config struct {
	noLifetimeCheck   bool
	now               func() time.Time
	lifetime          time.Duration
	psks              map[string][]byte
	priorGroups       []*Group
	ratchetTree       []byte
	noTreeExtension   bool
	encryptHandshake  bool
	padding           int
	validator         CredentialValidator
	groupID           []byte
	groupExtensions   []wire.Extension
	leafExtensions    []wire.Extension
	kpExtensions      []wire.Extension
	capabilities      *wire.Capabilities
	signaturePriv     []byte
	keepResumption    int
	epochWindow       int
	authenticatedData []byte
	forcePath         bool
	noExternalPub     bool
	resync            bool
	leafCred          *wire.Credential // WithLeafCredential: per call only
	leafSigPriv       []byte
	successor         CredentialSuccessor
}

func newConfig(opts []Option) config {
	c := config{keepResumption: 8, epochWindow: 1, lifetime: 90 * 24 * time.Hour}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// WithoutLifetimeCheck disables the check of KeyPackage leaf lifetimes
// (RFC 9420 §7.3). Production code keeps the default (checked); the IETF
// test vectors carry lifetimes that have expired.
func WithoutLifetimeCheck() Option { return func(c *config) { c.noLifetimeCheck = true } }

// WithClock sets the clock used for lifetimes.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLifetime sets how long a generated KeyPackage is valid (default 90
// days; it is valid from one hour before creation).
func WithLifetime(d time.Duration) Option { return func(c *config) { c.lifetime = d } }

// WithExternalPSK makes an external pre-shared key available under id.
func WithExternalPSK(id, secret []byte) Option {
	return func(c *config) {
		if c.psks == nil {
			c.psks = map[string][]byte{}
		}
		c.psks[string(id)] = append([]byte(nil), secret...)
	}
}

// WithRatchetTree supplies the group's ratchet tree (the encoded
// ratchet_tree extension body) to Join or JoinExternal when the GroupInfo
// does not carry it.
func WithRatchetTree(tree []byte) Option { return func(c *config) { c.ratchetTree = tree } }

// WithoutRatchetTreeExtension leaves the ratchet_tree extension out of the
// GroupInfo of Welcome messages and GroupInfo(); joiners then need
// WithRatchetTree.
func WithoutRatchetTreeExtension() Option { return func(c *config) { c.noTreeExtension = true } }

// WithoutExternalPub leaves the external_pub extension out of GroupInfo(),
// so it cannot be used for an external join.
func WithoutExternalPub() Option { return func(c *config) { c.noExternalPub = true } }

// WithHandshakeEncryption sends proposals and commits as PrivateMessage
// (default: PublicMessage).
func WithHandshakeEncryption(on bool) Option { return func(c *config) { c.encryptHandshake = on } }

// WithPadding pads the content of every PrivateMessage with n zero bytes.
func WithPadding(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.padding = n
		}
	}
}

// WithCredentialValidator installs the application's credential check.
// Without it every credential is accepted (basic credentials carry no
// proof; applications should validate them).
func WithCredentialValidator(v CredentialValidator) Option {
	return func(c *config) { c.validator = v }
}

// WithGroupID sets the group id of NewGroup (default: 32 random bytes).
func WithGroupID(id []byte) Option { return func(c *config) { c.groupID = append([]byte(nil), id...) } }

// WithGroupExtensions sets the GroupContext extensions of NewGroup (for
// example required_capabilities or external_senders).
func WithGroupExtensions(exts ...wire.Extension) Option {
	return func(c *config) { c.groupExtensions = exts }
}

// WithLeafExtensions sets the extensions of generated leaf nodes.
func WithLeafExtensions(exts ...wire.Extension) Option {
	return func(c *config) { c.leafExtensions = exts }
}

// WithKeyPackageExtensions sets the extensions of a generated KeyPackage.
func WithKeyPackageExtensions(exts ...wire.Extension) Option {
	return func(c *config) { c.kpExtensions = exts }
}

// WithCapabilities sets the capabilities of generated leaf nodes (default:
// version 1, the suite, basic and x509 credentials, no extra extensions or
// proposals).
func WithCapabilities(caps wire.Capabilities) Option {
	return func(c *config) { c.capabilities = &caps }
}

// WithSignatureKey makes GenerateKeyPackage, NewGroup and JoinExternal
// use this signature private key instead of generating one.
func WithSignatureKey(priv []byte) Option {
	return func(c *config) { c.signaturePriv = append([]byte(nil), priv...) }
}

// WithResumptionPSKs sets how many past epochs' resumption secrets a group
// keeps (default 8).
func WithResumptionPSKs(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.keepResumption = n
		}
	}
}

// WithEpochWindow sets how many past epochs' application messages a group
// still opens after a commit (default 1): messages sent before a commit
// that arrive after it. Their decryption keys are kept that long, which
// delays forward secrecy by as many epochs (RFC 9420 §15.2); 0 keeps none.
// Past epochs are not persisted by MarshalState.
func WithEpochWindow(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.epochWindow = n
		}
	}
}

// WithAuthenticatedData sets the authenticated_data of the messages a call
// creates (application messages, proposals, commits).
func WithAuthenticatedData(ad []byte) Option {
	return func(c *config) { c.authenticatedData = ad }
}

// WithPath forces an UpdatePath in a commit even when none is required.
func WithPath() Option { return func(c *config) { c.forcePath = true } }

// WithLeafCredential makes a commit with a path (Commit, Update) or
// ProposeUpdate give this member's new leaf the credential cred and the
// signature key whose private key is sigPriv (RFC 9420 §7.3, §12.1.2): the
// new LeafNode is signed with the new key, and once the commit is merged
// (or the commit that includes the Update proposal is applied) the member
// signs with it. A Commit given this option always includes a path. It
// applies to one call: NewGroup, Join and UnmarshalState ignore it.
func WithLeafCredential(cred Credential, sigPriv []byte) Option {
	return func(c *config) {
		cr := cloneCredential(cred)
		c.leafCred = &cr
		c.leafSigPriv = append([]byte(nil), sigPriv...)
	}
}

// CredentialSuccessor is the Authentication Service's succession check
// (RFC 9420 §5.3.1): old is a member's current credential, next the one
// its new leaf carries. A non-nil error refuses the change.
type CredentialSuccessor func(old, next Credential) error

// WithCredentialSuccessor installs a check applied whenever a member's
// credential or signature key changes, in a commit's UpdatePath or an
// Update proposal, beside the CredentialValidator that validates the new
// credential as any other. A refused change gives an error wrapping
// ErrCredentialSuccessor (and ErrInvalidCommit or ErrInvalidProposal).
// Without it every change the validator accepts is accepted.
func WithCredentialSuccessor(f CredentialSuccessor) Option {
	return func(c *config) { c.successor = f }
}

// WithResync makes JoinExternal remove the joiner's old appearance: the
// leaf whose signature key equals the joiner's (RFC 9420 §12.4.3.2).
func WithResync() Option { return func(c *config) { c.resync = true } }

// WithResumptionPSKFrom lets Join (and the new group) use the resumption
// secrets of a group this client is or was a member of: needed to join a
// group made by Branch or ReInitGroup, whose Welcome names a resumption
// PSK of the prior group.
func WithResumptionPSKFrom(g *Group) Option {
	return func(c *config) {
		if g != nil {
			c.priorGroups = append(c.priorGroups, g)
		}
	}
}
