package tree

import "errors"

// Errors returned by the package; they are wrapped with details, so compare
// with errors.Is.
var (
	// ErrInvalidTree: the tree's structure breaks an RFC 9420 rule (wrong
	// node kinds, bad unmerged leaves, leaf index out of range, ...).
	ErrInvalidTree = errors.New("mls tree: invalid ratchet tree")
	// ErrParentHash: a parent hash does not verify (§7.9.2).
	ErrParentHash = errors.New("mls tree: parent hash mismatch")
	// ErrLeafSignature: a leaf node signature does not verify (§7.3).
	ErrLeafSignature = errors.New("mls tree: leaf node signature invalid")
	// ErrInvalidLeaf: a leaf node fails another §7.3 check.
	ErrInvalidLeaf = errors.New("mls tree: invalid leaf node")
	// ErrBlankLeaf: the operation names a blank or missing leaf.
	ErrBlankLeaf = errors.New("mls tree: leaf is blank or out of range")
	// ErrDuplicateKey: a signature or encryption key is already used by
	// another member.
	ErrDuplicateKey = errors.New("mls tree: key already used in the tree")
	// ErrUpdatePath: an UpdatePath does not match the tree (wrong number
	// of nodes or of ciphertexts, ...).
	ErrUpdatePath = errors.New("mls tree: malformed update path")
	// ErrNoPrivateKey: the member holds no private key able to decrypt
	// its path secret.
	ErrNoPrivateKey = errors.New("mls tree: no private key for the update path")
	// ErrKeyMismatch: a derived public key differs from the one in the
	// tree or the UpdatePath.
	ErrKeyMismatch = errors.New("mls tree: derived public key does not match")
)
