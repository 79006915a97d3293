// Package schedule implements the MLS key schedule and the secrets derived
// from it (RFC 9420 §8, §9), on raw bytes so that it depends only on
// mls/suite and mls/codec:
//
//   - Advance and FromJoinerSecret: init_secret, commit_secret, psk_secret
//     and the serialized GroupContext give joiner_secret, welcome_secret,
//     epoch_secret and the epoch secrets (sender_data, encryption, exporter,
//     external, confirmation, membership, resumption, epoch_authenticator,
//     and the init_secret of the next epoch), the external HPKE key pair
//     (external_pub) and MLS-Exporter (§8.5).
//   - PSKSecret chains pre-shared keys (§8.4); ExternalPSKID and
//     ResumptionPSKID encode PreSharedKeyID for it.
//   - SecretTree is the secret tree of §9 with its handshake and
//     application ratchets: lazy (only the path to a leaf that is used is
//     derived), with used keys deleted, a bounded out-of-order window and a
//     maximum forward jump. A receiver can Peek a key without changing
//     the tree and Consume it once the message authenticated, so a forged
//     message cannot burn keys or move the ratchet. SenderDataKeyNonce derives the sender-data key
//     and nonce (§6.3.2).
//   - ConfirmedTranscriptHash, InterimTranscriptHash and ConfirmationTag
//     are the transcript hash helpers of §8.2 on encoded structs.
//
// Secrets are byte slices of the suite's Nh length. Values returned to the
// caller are owned by the caller; secrets the SecretTree deletes are zeroed
// first.
package schedule
