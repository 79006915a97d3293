package wire

import "github.com/agwproject/agw/mls/codec"

// ParentNode is an interior node of the ratchet tree (RFC 9420 §7.1).
type ParentNode struct {
	EncryptionKey  []byte
	ParentHash     []byte
	UnmergedLeaves []uint32
}

// Marshal writes the parent node.
func (v *ParentNode) Marshal(w *codec.Writer) {
	w.Opaque(v.EncryptionKey)
	w.Opaque(v.ParentHash)
	w.Vector(func(w *codec.Writer) {
		for _, l := range v.UnmergedLeaves {
			w.U32(l)
		}
	})
}

// Unmarshal reads the parent node.
func (v *ParentNode) Unmarshal(r *codec.Reader) {
	*v = ParentNode{}
	v.EncryptionKey = r.Opaque()
	v.ParentHash = r.Opaque()
	r.Elements(func(r *codec.Reader) { v.UnmergedLeaves = append(v.UnmergedLeaves, r.U32()) })
	if r.Err() != nil {
		v.UnmergedLeaves = nil
	}
}

// Node is a non-blank ratchet tree node: Leaf is set for type leaf,
// Parent for type parent (RFC 9420 §12.4.3.3).
type Node struct {
	Type   NodeType
	Leaf   *LeafNode
	Parent *ParentNode
}

// Marshal writes the node.
func (v *Node) Marshal(w *codec.Writer) {
	w.U8(uint8(v.Type))
	switch v.Type {
	case NodeTypeLeaf:
		leaf := v.Leaf
		if leaf == nil {
			leaf = &LeafNode{}
		}
		leaf.Marshal(w)
	case NodeTypeParent:
		parent := v.Parent
		if parent == nil {
			parent = &ParentNode{}
		}
		parent.Marshal(w)
	}
}

// Unmarshal reads the node. An unknown node type is an error.
func (v *Node) Unmarshal(r *codec.Reader) {
	*v = Node{Type: NodeType(r.U8())}
	if r.Err() != nil {
		return
	}
	switch v.Type {
	case NodeTypeLeaf:
		v.Leaf = new(LeafNode)
		v.Leaf.Unmarshal(r)
	case NodeTypeParent:
		v.Parent = new(ParentNode)
		v.Parent.Unmarshal(r)
	default:
		r.Failf("wire: unknown node type %d", uint8(v.Type))
	}
}

// RatchetTree is the array form of a ratchet tree as carried by the
// ratchet_tree extension: optional<Node> ratchet_tree<V> (RFC 9420
// §12.4.3.3). Entry i is node i; nil is a blank node.
type RatchetTree []*Node

// Marshal writes the tree. Trailing blank nodes are not written, as the
// RFC requires, so a full-width in-memory tree may be passed directly.
func (v *RatchetTree) Marshal(w *codec.Writer) {
	nodes := *v
	for len(nodes) > 0 && nodes[len(nodes)-1] == nil {
		nodes = nodes[:len(nodes)-1]
	}
	w.Vector(func(w *codec.Writer) {
		for _, n := range nodes {
			w.Optional(n != nil, func(w *codec.Writer) { n.Marshal(w) })
		}
	})
}

// Unmarshal reads the tree. Besides the encoding itself it checks the
// structure the RFC fixes: the tree is not empty, its last node is not
// blank, and leaves sit at even indices, parents at odd ones.
func (v *RatchetTree) Unmarshal(r *codec.Reader) {
	var nodes RatchetTree
	r.Elements(func(r *codec.Reader) {
		var n *Node
		r.Optional(func(r *codec.Reader) {
			n = new(Node)
			n.Unmarshal(r)
		})
		if r.Err() != nil {
			return
		}
		i := len(nodes)
		if n != nil {
			if want := nodeTypeAt(i); n.Type != want {
				r.Failf("wire: ratchet tree node %d is a %v node, want %v", i, n.Type, want)
				return
			}
		}
		nodes = append(nodes, n)
	})
	if r.Err() != nil {
		*v = nil
		return
	}
	switch {
	case len(nodes) == 0:
		r.Failf("wire: empty ratchet tree")
	case nodes[len(nodes)-1] == nil:
		r.Failf("wire: ratchet tree ends with a blank node")
	}
	if r.Err() != nil {
		*v = nil
		return
	}
	*v = nodes
}

func nodeTypeAt(i int) NodeType {
	if i%2 == 0 {
		return NodeTypeLeaf
	}
	return NodeTypeParent
}

// HPKECiphertext is an HPKE encryption: the encapsulated key and the
// ciphertext (RFC 9420 §7.6).
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// Marshal writes the ciphertext.
func (v *HPKECiphertext) Marshal(w *codec.Writer) {
	w.Opaque(v.KEMOutput)
	w.Opaque(v.Ciphertext)
}

// Unmarshal reads the ciphertext.
func (v *HPKECiphertext) Unmarshal(r *codec.Reader) {
	v.KEMOutput = r.Opaque()
	v.Ciphertext = r.Opaque()
}

// UpdatePathNode is one node of an UpdatePath: the new public key and the
// path secret encrypted to each node of the copath resolution (RFC 9420
// §7.6).
type UpdatePathNode struct {
	EncryptionKey       []byte
	EncryptedPathSecret []HPKECiphertext
}

// Marshal writes the node.
func (v *UpdatePathNode) Marshal(w *codec.Writer) {
	w.Opaque(v.EncryptionKey)
	w.Vector(func(w *codec.Writer) {
		for i := range v.EncryptedPathSecret {
			v.EncryptedPathSecret[i].Marshal(w)
		}
	})
}

// Unmarshal reads the node.
func (v *UpdatePathNode) Unmarshal(r *codec.Reader) {
	*v = UpdatePathNode{}
	v.EncryptionKey = r.Opaque()
	r.Elements(func(r *codec.Reader) {
		var c HPKECiphertext
		c.Unmarshal(r)
		v.EncryptedPathSecret = append(v.EncryptedPathSecret, c)
	})
	if r.Err() != nil {
		v.EncryptedPathSecret = nil
	}
}

// UpdatePath is the committer's new leaf and direct path (RFC 9420 §7.6).
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// Marshal writes the path.
func (v *UpdatePath) Marshal(w *codec.Writer) {
	v.LeafNode.Marshal(w)
	w.Vector(func(w *codec.Writer) {
		for i := range v.Nodes {
			v.Nodes[i].Marshal(w)
		}
	})
}

// Unmarshal reads the path.
func (v *UpdatePath) Unmarshal(r *codec.Reader) {
	*v = UpdatePath{}
	v.LeafNode.Unmarshal(r)
	r.Elements(func(r *codec.Reader) {
		var n UpdatePathNode
		n.Unmarshal(r)
		v.Nodes = append(v.Nodes, n)
	})
	if r.Err() != nil {
		v.Nodes = nil
	}
}
