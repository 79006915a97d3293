// Package tree implements the ratchet tree of MLS (RFC 9420): the array
// tree arithmetic of §4 and Appendix C, resolutions, tree hashes (§7.8),
// parent hashes (§7.9), leaf node validation (§7.3), the tree changes made
// by Add, Update and Remove proposals (§12.1), and TreeKEM: creating and
// applying an UpdatePath (§7.4-§7.6).
//
// The tree is always full: it has 2^d leaves and 2^(d+1)-1 nodes. Leaves
// sit at even node indices and parents at odd ones; a nil entry is blank.
package tree
