// Package mls is the group layer of the Messaging Layer Security protocol
// (RFC 9420) and the library's public API.
//
// A client creates a KeyPackageBundle (GenerateKeyPackage), publishes its
// KeyPackage, and is added to a group by a member's Commit plus Welcome
// (Join), or joins on its own from a GroupInfo with an external Commit
// (JoinExternal). A Group then encrypts and decrypts application data,
// sends and receives proposals and commits (ProcessMessage), exports
// secrets (Export) and can be persisted with MarshalState/UnmarshalState.
//
// Messages cross the API as encoded MLSMessage bytes. Every incoming
// message is checked as RFC 9420 requires: group id, epoch, membership tag
// (constant time), signature, AEAD, generation reuse, proposal list rules,
// path rules, parent hashes, leaf node validation and the confirmation tag.
// Failures wrap one of the exported sentinel errors (ErrBadSignature,
// ErrBadMembershipTag, ErrWrongEpoch, ...), compare them with errors.Is.
//
// A Group is not safe for concurrent use; callers serialise access.
// Suites 1, 2, 3, 5 and 7 are supported (see package suite).
package mls
