// Package mls is the group layer of the Messaging Layer Security protocol
// (RFC 9420) and the library's public API.
//
// # Joining and leaving
//
// A client creates a KeyPackageBundle (GenerateKeyPackage), publishes its
// KeyPackage (KeyPackageBundle.Bytes) and keeps the private keys
// (KeyPackageBundle.MarshalBinary). A member adds it with a commit
// (Group.Add, or Group.ProposeAdd and a later Group.Commit) whose Welcome
// the new member passes to Join. A client can also join on its own from a
// GroupInfo (Group.GroupInfo) with an external commit (JoinExternal). A
// group is created with NewGroup.
//
// # Epochs
//
// Commits (Group.Commit, Add, Remove, Update) are staged: the committer
// sends CommitResult.Commit to the group and calls MergePendingCommit once
// the delivery service accepted it (or ClearPendingCommit). Other members
// apply it with ProcessMessage. Proposals (Group.Propose, ProposeAdd,
// ProposeRemove, ProposeUpdate, ...) are cached by reference by everyone
// and included in the next commit. External parties send proposals with
// ExternalProposal (signers listed in the external_senders extension) or
// NewMemberProposal.
//
// # Credential rotation
//
// A member changes the credential and signature key of its own leaf with
// WithLeafCredential: in the UpdatePath of its commit (Update, Commit) or
// in an Update proposal (ProposeUpdate) that another member commits (RFC
// 9420 §7.3, §12.1.2). The new leaf is signed with the new key; the
// message carrying it with the current one. Once the commit is merged (or
// the commit including the proposal applied) the member signs with the
// new key, and the others verify its messages with it only. Receivers
// validate the new credential like any other (WithCredentialValidator)
// and check that it succeeds the old one (WithCredentialSuccessor;
// refusal: ErrCredentialSuccessor).
//
// # Messages
//
// Messages cross the API as encoded MLSMessage bytes. Application data is
// always a PrivateMessage (Group.Encrypt); handshake messages are
// PublicMessage unless WithHandshakeEncryption is set. ProcessMessage
// checks everything RFC 9420 requires: group id, epoch, membership tag
// (constant time), signature, AEAD, key generation reuse, proposal list
// rules, path rules, parent hashes, leaf node validation and the
// confirmation tag. Failures wrap one of the exported sentinel errors
// (ErrBadSignature, ErrBadMembershipTag, ErrWrongEpoch, ...); compare them
// with errors.Is. Application messages of the previous epoch are still
// accepted after a commit.
//
// Large application messages (tens of KiB and more) cost little beyond
// their cryptography: Encrypt signs the data where it lies (ECDSA suites
// hash it as a stream; Ed25519 assembles the signed content in a reused
// buffer) and copies it once, into a message buffer of the exact size that
// is then encrypted in place; ProcessMessage and Decrypt do not copy the
// message to decode it, decrypt into one new buffer, and return the
// plaintext from it. ProcessMessage never modifies its input nor returns
// slices of it. Callers that can do better use EncryptVec (data in several
// pieces, not concatenated), AppendEncryptVec (into a reused buffer: no
// allocation per message) and ProcessMessageInPlace (decrypts in the
// message's own bytes, which the caller gives up).
//
// The key schedule, PSK secret, transcript hashes and secret tree are
// those of package schedule. Each sender's ratchets accept messages up to
// 4,096 generations ahead and keep the keys of the 256 generations below
// the newest one received for out-of-order messages; a key is consumed
// only once the content it protects decrypted, so a forged message moves
// no ratchet and burns no key. A used generation gives
// ErrGenerationReused.
//
// # Secrets and state
//
// Group.Export is the MLS exporter and Group.EpochAuthenticator the value
// members compare to detect forks. Group.MarshalState and UnmarshalState
// persist a group, private keys included: encrypt the state at rest.
// The state format is versioned; states of format 1 (before the secret
// tree moved to package schedule) are refused with ErrState.
//
// A Group is not safe for concurrent use; callers serialise access.
// Suites 1, 2, 3, 5 and 7 are supported; 4 and 6 (X448/Ed448) give
// ErrUnsupported (see package suite).
package mls
