package wire

import "github.com/agwproject/agw/mls/codec"

// LeafNodeHashInput returns the encoded TreeHashInput of a leaf
// (RFC 9420 §7.8): node_type leaf, the leaf index and optional<LeafNode>
// (leaf nil for a blank leaf).
func LeafNodeHashInput(leafIndex uint32, leaf *LeafNode) []byte {
	w := codec.NewWriter(512)
	w.U8(uint8(NodeTypeLeaf))
	w.U32(leafIndex)
	w.Optional(leaf != nil, func(w *codec.Writer) { leaf.Marshal(w) })
	return w.MustBytes()
}

// ParentNodeHashInput returns the encoded TreeHashInput of a parent
// (RFC 9420 §7.8): node_type parent, optional<ParentNode> (nil for a blank
// node) and the left and right subtree hashes.
func ParentNodeHashInput(parent *ParentNode, leftHash, rightHash []byte) []byte {
	w := codec.NewWriter(256)
	w.U8(uint8(NodeTypeParent))
	w.Optional(parent != nil, func(w *codec.Writer) { parent.Marshal(w) })
	w.Opaque(leftHash)
	w.Opaque(rightHash)
	return w.MustBytes()
}

// ParentHashInput returns the encoded ParentHashInput (RFC 9420 §7.9).
func ParentHashInput(encryptionKey, parentHash, originalSiblingTreeHash []byte) []byte {
	w := codec.NewWriter(128)
	w.Opaque(encryptionKey)
	w.Opaque(parentHash)
	w.Opaque(originalSiblingTreeHash)
	return w.MustBytes()
}
