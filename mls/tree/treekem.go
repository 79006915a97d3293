package tree

import (
	"crypto/hmac"
	"crypto/rand"
	"fmt"

	"github.com/agwproject/agw/mls/wire"
)

// UpdatePathNodeLabel is the EncryptWithLabel label of path secrets (§7.6).
const UpdatePathNodeLabel = "UpdatePathNode"

// GroupContextFunc returns the encoded provisional GroupContext of the new
// epoch given the tree hash of the tree after the UpdatePath is merged; the
// path secrets are encrypted to it (§7.6, §12.4.2).
type GroupContextFunc func(treeHash []byte) ([]byte, error)

// PathParams are the inputs of GeneratePath.
type PathParams struct {
	Sender  LeafIndex
	GroupID []byte
	// Signer signs the new leaf node (LeafNodeTBS with GroupID and Sender).
	Signer Signer
	// Leaf is the template of the new leaf node: its signature key,
	// credential, capabilities and extensions are used. Nil keeps those of
	// the sender's current leaf.
	Leaf *wire.LeafNode
	// Exclude lists the leaves added by the same commit; they get no
	// ciphertext (§7.6).
	Exclude []LeafIndex
	// GroupContext gives the encoded provisional GroupContext.
	GroupContext GroupContextFunc
	// LeafSecret seeds the path (leaf key and path secrets); nil draws Nh
	// random bytes. Set it only for reproducible tests.
	LeafSecret []byte
}

// PathResult is what GeneratePath produces.
type PathResult struct {
	Path         *wire.UpdatePath
	CommitSecret []byte
	// FilteredDirectPath is the sender's filtered direct path, bottom up,
	// and PathSecrets holds the path secret of each of its nodes.
	FilteredDirectPath []NodeIndex
	PathSecrets        [][]byte
	// Private holds the sender's new keys: its leaf and its whole
	// filtered direct path.
	Private *Private
	// GroupContext is the encoded provisional GroupContext used.
	GroupContext []byte
}

// PathSecretFor returns the path secret a new member at leaf joiner must
// receive in the Welcome: that of the lowest node of the filtered direct
// path above it, or nil if there is none (joiner below no path node).
func (r *PathResult) PathSecretFor(joiner LeafIndex) []byte {
	for j, x := range r.FilteredDirectPath {
		if InSubtree(joiner.Node(), x) {
			return r.PathSecrets[j]
		}
	}
	return nil
}

// GeneratePath creates an UpdatePath for p.Sender (§7.4-§7.6) and merges it
// into t, which must already hold the changes of the commit's proposals:
// it blanks the sender's direct path, derives fresh keys for its leaf and
// filtered direct path, sets the parent hashes, signs the new leaf (source
// commit) and encrypts each path secret to the resolution of the copath
// child under the GroupContext returned by p.GroupContext for the new tree
// hash. On error t may be partly changed: work on a Clone.
func GeneratePath(t *Tree, p PathParams) (*PathResult, error) {
	s := t.s
	old := t.Leaf(p.Sender)
	if old == nil {
		return nil, fmt.Errorf("%w: sender %d", ErrBlankLeaf, p.Sender)
	}
	if p.Signer == nil || p.GroupContext == nil {
		return nil, fmt.Errorf("mls tree: GeneratePath needs a Signer and a GroupContext function")
	}
	leafSecret := p.LeafSecret
	if leafSecret == nil {
		leafSecret = make([]byte, s.Nh())
		if _, err := rand.Read(leafSecret); err != nil {
			return nil, fmt.Errorf("mls tree: random leaf secret: %w", err)
		}
	}
	leafPriv, leafPub, err := DeriveNodeKey(s, leafSecret)
	if err != nil {
		return nil, err
	}

	fdp, copath := t.filteredPath(p.Sender)
	res := &PathResult{
		FilteredDirectPath: fdp,
		PathSecrets:        make([][]byte, len(fdp)),
		Private:            NewPrivate(p.Sender, leafPriv),
	}
	parents := make([]*wire.ParentNode, len(fdp))
	ps := leafSecret
	for j := range fdp {
		ps = NextPathSecret(s, ps)
		res.PathSecrets[j] = ps
		priv, pub, err := DeriveNodeKey(s, ps)
		if err != nil {
			return nil, err
		}
		res.Private.Keys[fdp[j]] = priv
		parents[j] = &wire.ParentNode{EncryptionKey: pub}
	}
	res.CommitSecret = NextPathSecret(s, ps)

	t.blankDirectPath(p.Sender)
	leafPH := t.chainParentHashes(parents, copath)
	for j, x := range fdp {
		t.setParent(x, parents[j])
	}

	tmpl := p.Leaf
	if tmpl == nil {
		tmpl = old
	}
	leaf := &wire.LeafNode{
		EncryptionKey: leafPub,
		SignatureKey:  tmpl.SignatureKey,
		Credential:    tmpl.Credential,
		Capabilities:  tmpl.Capabilities,
		Source:        wire.LeafNodeSourceCommit,
		ParentHash:    leafPH,
		Extensions:    tmpl.Extensions,
	}
	if err := SignLeaf(p.Signer, leaf, p.GroupID, p.Sender); err != nil {
		return nil, err
	}
	t.setLeaf(p.Sender, leaf)

	ctx, err := p.GroupContext(t.TreeHash())
	if err != nil {
		return nil, fmt.Errorf("mls tree: group context: %w", err)
	}
	res.GroupContext = ctx
	ex := excludeSet(p.Exclude)
	path := &wire.UpdatePath{LeafNode: *leaf, Nodes: make([]wire.UpdatePathNode, len(fdp))}
	for j := range fdp {
		node := &path.Nodes[j]
		node.EncryptionKey = parents[j].EncryptionKey
		for _, y := range t.resolutionExcluding(copath[j], ex) {
			kem, ct, err := s.EncryptWithLabel(t.EncryptionKey(y), UpdatePathNodeLabel, ctx, res.PathSecrets[j])
			if err != nil {
				return nil, fmt.Errorf("mls tree: encrypt path secret to node %d: %w", y, err)
			}
			node.EncryptedPathSecret = append(node.EncryptedPathSecret, wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct})
		}
	}
	res.Path = path
	return res, nil
}

// chainParentHashes fills the ParentHash of the new path nodes top down
// (the topmost gets an empty one) and returns the parent hash for the leaf
// (§7.9). parents[j] is the new node at the j-th filtered direct path
// position and copath[j] its child off the path; the new nodes have no
// unmerged leaves, so the original sibling tree hashes are the current ones.
func (t *Tree) chainParentHashes(parents []*wire.ParentNode, copath []NodeIndex) []byte {
	ph := []byte{}
	for j := len(parents) - 1; j >= 0; j-- {
		parents[j].ParentHash = ph
		ph = t.parentHash(parents[j], copath[j])
	}
	return ph
}

func excludeSet(ls []LeafIndex) map[LeafIndex]bool {
	if len(ls) == 0 {
		return nil
	}
	m := make(map[LeafIndex]bool, len(ls))
	for _, l := range ls {
		m[l] = true
	}
	return m
}

// ApplyResult is what ApplyPath produces.
type ApplyResult struct {
	CommitSecret []byte
	// Node is the node of the sender's filtered direct path whose path
	// secret was decrypted, PathSecret that secret.
	Node       NodeIndex
	PathSecret []byte
	// Private is the member's new private state.
	Private *Private
}

// MergePath merges the UpdatePath of sender into t (§7.5): it checks the
// number of path nodes, blanks the sender's direct path, installs the new
// public keys with empty unmerged leaves, computes the parent hashes and
// verifies the leaf's parent_hash (ErrParentHash). It does not verify the
// leaf node's signature or other §7.3 properties: call ValidateLeaf (source
// commit) and CheckLeafKeys first. On error t may be partly changed.
func MergePath(t *Tree, sender LeafIndex, path *wire.UpdatePath) error {
	if t.Leaf(sender) == nil {
		return fmt.Errorf("%w: sender %d", ErrBlankLeaf, sender)
	}
	fdp, copath := t.filteredPath(sender)
	if len(path.Nodes) != len(fdp) {
		return fmt.Errorf("%w: %d path nodes for a filtered direct path of %d", ErrUpdatePath, len(path.Nodes), len(fdp))
	}
	return t.merge(sender, path, fdp, copath)
}

func (t *Tree) merge(sender LeafIndex, path *wire.UpdatePath, fdp, copath []NodeIndex) error {
	if path.LeafNode.Source != wire.LeafNodeSourceCommit {
		return fmt.Errorf("%w: update path leaf has source %v, want commit", ErrInvalidLeaf, path.LeafNode.Source)
	}
	parents := make([]*wire.ParentNode, len(fdp))
	for j := range fdp {
		if len(path.Nodes[j].EncryptionKey) == 0 {
			return fmt.Errorf("%w: empty encryption key at path node %d", ErrUpdatePath, j)
		}
		parents[j] = &wire.ParentNode{EncryptionKey: path.Nodes[j].EncryptionKey}
	}
	t.blankDirectPath(sender)
	ph := t.chainParentHashes(parents, copath)
	if !hmac.Equal(ph, path.LeafNode.ParentHash) {
		return fmt.Errorf("%w: update path leaf of sender %d", ErrParentHash, sender)
	}
	for j, x := range fdp {
		t.setParent(x, parents[j])
	}
	leaf := path.LeafNode
	t.setLeaf(sender, &leaf)
	return nil
}

// ApplyPath processes the UpdatePath of sender for the member whose private
// state is priv (§7.5): it merges the path into t (see MergePath, with the
// same caveats), obtains the provisional GroupContext for the new tree
// hash, decrypts the path secret at the lowest filtered direct path node
// above the member, derives the secrets above it, checks the derived public
// keys against the path (ErrKeyMismatch) and returns the commit secret and
// the member's new private state (priv is not changed). exclude lists the
// leaves added by the same commit. Every path node must carry one
// ciphertext per node of the copath resolution (ErrUpdatePath).
func ApplyPath(t *Tree, sender LeafIndex, path *wire.UpdatePath, priv *Private, groupContext GroupContextFunc, exclude []LeafIndex) (*ApplyResult, error) {
	s := t.s
	if t.Leaf(sender) == nil {
		return nil, fmt.Errorf("%w: sender %d", ErrBlankLeaf, sender)
	}
	if priv == nil || priv.Leaf == sender {
		return nil, fmt.Errorf("%w: a member cannot apply its own update path", ErrNoPrivateKey)
	}
	fdp, copath := t.filteredPath(sender)
	if len(path.Nodes) != len(fdp) {
		return nil, fmt.Errorf("%w: %d path nodes for a filtered direct path of %d", ErrUpdatePath, len(path.Nodes), len(fdp))
	}
	ex := excludeSet(exclude)
	me := priv.Leaf.Node()
	at, k := -1, -1
	var res []NodeIndex
	for j := range fdp {
		r := t.resolutionExcluding(copath[j], ex)
		if n := len(path.Nodes[j].EncryptedPathSecret); n != len(r) {
			return nil, fmt.Errorf("%w: path node %d has %d ciphertexts for a resolution of %d", ErrUpdatePath, j, n, len(r))
		}
		if at < 0 && InSubtree(me, copath[j]) {
			at, res = j, r
		}
	}
	if at < 0 {
		return nil, fmt.Errorf("%w: leaf %d is not below the path of leaf %d", ErrNoPrivateKey, priv.Leaf, sender)
	}
	for i, y := range res {
		if _, ok := priv.Keys[y]; ok {
			k = i
			break
		}
	}
	if k < 0 {
		return nil, fmt.Errorf("%w: none for the resolution of node %d", ErrNoPrivateKey, copath[at])
	}

	if err := t.merge(sender, path, fdp, copath); err != nil {
		return nil, err
	}
	ctx, err := groupContext(t.TreeHash())
	if err != nil {
		return nil, fmt.Errorf("mls tree: group context: %w", err)
	}
	ct := path.Nodes[at].EncryptedPathSecret[k]
	ps, err := s.DecryptWithLabel(priv.Keys[res[k]], UpdatePathNodeLabel, ctx, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("mls tree: decrypt path secret of node %d: %w", fdp[at], err)
	}
	out := &ApplyResult{Node: fdp[at], PathSecret: ps, Private: priv.Clone()}
	// Keys on the sender's direct path are replaced or blanked.
	for x := range out.Private.Keys {
		if x != me && InSubtree(sender.Node(), x) {
			delete(out.Private.Keys, x)
		}
	}
	for j := at; j < len(fdp); j++ {
		npriv, npub, err := DeriveNodeKey(s, ps)
		if err != nil {
			return nil, err
		}
		if !hmac.Equal(npub, path.Nodes[j].EncryptionKey) {
			return nil, fmt.Errorf("%w: path node %d (node %d)", ErrKeyMismatch, j, fdp[j])
		}
		out.Private.Keys[fdp[j]] = npriv
		ps = NextPathSecret(s, ps)
	}
	out.CommitSecret = ps
	return out, nil
}
