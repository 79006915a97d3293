package mls

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them (and
// sometimes an error of a lower layer as well); test with errors.Is.
var (
	// ErrMalformed: a message or structure could not be decoded.
	ErrMalformed = errors.New("mls: malformed message")
	// ErrWrongGroup: the message belongs to another group.
	ErrWrongGroup = errors.New("mls: message for another group")
	// ErrWrongEpoch: the message's epoch is not the group's current epoch.
	ErrWrongEpoch = errors.New("mls: message for another epoch")
	// ErrFutureEpoch: the message is for a later epoch than the group's
	// (a commit was missed or is still on its way); such errors also wrap
	// ErrWrongEpoch. Callers may buffer the message and retry after the
	// next commit.
	ErrFutureEpoch = errors.New("mls: message for a future epoch")
	// ErrBadSignature: a signature (content, leaf node, key package,
	// GroupInfo) did not verify.
	ErrBadSignature = errors.New("mls: bad signature")
	// ErrBadMembershipTag: a PublicMessage membership tag is wrong or missing.
	ErrBadMembershipTag = errors.New("mls: bad membership tag")
	// ErrDecrypt: a PrivateMessage, Welcome or path secret did not decrypt.
	ErrDecrypt = errors.New("mls: decryption failed")
	// ErrGenerationReused: a PrivateMessage used a key generation that was
	// already consumed (replay) or is too far in the past.
	ErrGenerationReused = errors.New("mls: key generation already used")
	// ErrBadConfirmationTag: a commit's or GroupInfo's confirmation tag is wrong.
	ErrBadConfirmationTag = errors.New("mls: bad confirmation tag")
	// ErrInvalidTree: a ratchet tree failed validation (tree hash, parent
	// hash, leaf node, unmerged leaves).
	ErrInvalidTree = errors.New("mls: invalid ratchet tree")
	// ErrInvalidKeyPackage: a KeyPackage failed validation.
	ErrInvalidKeyPackage = errors.New("mls: invalid key package")
	// ErrInvalidLeafNode: a LeafNode failed validation.
	ErrInvalidLeafNode = errors.New("mls: invalid leaf node")
	// ErrInvalidProposal: a proposal or a committed proposal list breaks
	// RFC 9420 §12.1/§12.2.
	ErrInvalidProposal = errors.New("mls: invalid proposal")
	// ErrUnknownProposal: a commit references a proposal this client has
	// not received in the epoch.
	ErrUnknownProposal = errors.New("mls: unknown proposal reference")
	// ErrInvalidCommit: a commit breaks a rule of RFC 9420 §12.4 (path
	// missing, bad path, own commit).
	ErrInvalidCommit = errors.New("mls: invalid commit")
	// ErrInvalidMessage: a message is well-formed but not allowed (an
	// application message as PublicMessage, a forbidden sender type, ...).
	ErrInvalidMessage = errors.New("mls: invalid message")
	// ErrUnknownSender: the sender is not a member or an allowed external
	// sender.
	ErrUnknownSender = errors.New("mls: unknown sender")
	// ErrMissingPSK: a pre-shared key needed for a commit or Welcome is not
	// available.
	ErrMissingPSK = errors.New("mls: pre-shared key not available")
	// ErrNoMatchingKeyPackage: a Welcome holds no secrets for this client.
	ErrNoMatchingKeyPackage = errors.New("mls: welcome not for this key package")
	// ErrInvalidWelcome: a Welcome or its GroupInfo is invalid.
	ErrInvalidWelcome = errors.New("mls: invalid welcome")
	// ErrInvalidGroupInfo: a GroupInfo is invalid (signature, missing
	// extension, tree).
	ErrInvalidGroupInfo = errors.New("mls: invalid group info")
	// ErrUnsupported: a cipher suite, version, extension or capability
	// required by the peer is not supported.
	ErrUnsupported = errors.New("mls: unsupported")
	// ErrPendingCommit: a commit was created and not yet merged or cleared.
	ErrPendingCommit = errors.New("mls: a pending commit exists")
	// ErrNoPendingCommit: there is no pending commit to merge.
	ErrNoPendingCommit = errors.New("mls: no pending commit")
	// ErrRemoved: this member was removed from the group; the group can no
	// longer send.
	ErrRemoved = errors.New("mls: removed from the group")
	// ErrReInit: a commit with a ReInit proposal was applied; the group
	// must not be used to send anymore (RFC 9420 §12.4.2).
	ErrReInit = errors.New("mls: group was reinitialised")
	// ErrCredentialSuccessor: a member's new credential is not a valid
	// successor of its old one (see WithCredentialSuccessor).
	ErrCredentialSuccessor = errors.New("mls: credential is not a valid successor")
	// ErrState: a persisted state could not be restored.
	ErrState = errors.New("mls: invalid persisted state")
	// ErrInvalidArgument: a caller passed an invalid argument.
	ErrInvalidArgument = errors.New("mls: invalid argument")
)
