package wire

import "fmt"

// ProtocolVersion is the MLS protocol version (RFC 9420 §6).
type ProtocolVersion uint16

// Protocol versions.
const (
	ProtocolVersionReserved ProtocolVersion = 0
	MLS10                   ProtocolVersion = 1
)

// CipherSuite is the 16-bit cipher suite identifier (RFC 9420 §17.1).
type CipherSuite uint16

// Cipher suites of RFC 9420 §17.1.
const (
	CipherSuiteX25519AES128GCMSHA256Ed25519        CipherSuite = 1 // MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	CipherSuiteP256AES128GCMSHA256P256             CipherSuite = 2 // MLS_128_DHKEMP256_AES128GCM_SHA256_P256
	CipherSuiteX25519ChaCha20Poly1305SHA256Ed25519 CipherSuite = 3 // MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
	CipherSuiteX448AES256GCMSHA512Ed448            CipherSuite = 4 // MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448
	CipherSuiteP521AES256GCMSHA512P521             CipherSuite = 5 // MLS_256_DHKEMP521_AES256GCM_SHA512_P521
	CipherSuiteX448ChaCha20Poly1305SHA512Ed448     CipherSuite = 6 // MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448
	CipherSuiteP384AES256GCMSHA384P384             CipherSuite = 7 // MLS_256_DHKEMP384_AES256GCM_SHA384_P384
)

// ExtensionType identifies an extension (RFC 9420 §17.3).
type ExtensionType uint16

// Extension types.
const (
	ExtensionTypeApplicationID        ExtensionType = 1
	ExtensionTypeRatchetTree          ExtensionType = 2
	ExtensionTypeRequiredCapabilities ExtensionType = 3
	ExtensionTypeExternalPub          ExtensionType = 4
	ExtensionTypeExternalSenders      ExtensionType = 5
)

// ProposalType identifies a proposal (RFC 9420 §17.4).
type ProposalType uint16

// Proposal types.
const (
	ProposalTypeAdd                    ProposalType = 1
	ProposalTypeUpdate                 ProposalType = 2
	ProposalTypeRemove                 ProposalType = 3
	ProposalTypePSK                    ProposalType = 4
	ProposalTypeReInit                 ProposalType = 5
	ProposalTypeExternalInit           ProposalType = 6
	ProposalTypeGroupContextExtensions ProposalType = 7
)

// CredentialType identifies a credential format (RFC 9420 §17.5).
type CredentialType uint16

// Credential types.
const (
	CredentialTypeBasic CredentialType = 1
	CredentialTypeX509  CredentialType = 2
)

// LeafNodeSource says how a LeafNode was made (RFC 9420 §7.2).
type LeafNodeSource uint8

// Leaf node sources.
const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// SenderType is the kind of sender of a message (RFC 9420 §6).
type SenderType uint8

// Sender types.
const (
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

// ContentType is the type of a FramedContent (RFC 9420 §6).
type ContentType uint8

// Content types.
const (
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

// WireFormat is the format of an MLSMessage (RFC 9420 §6, §17.2).
type WireFormat uint16

// Wire formats.
const (
	WireFormatPublicMessage  WireFormat = 1
	WireFormatPrivateMessage WireFormat = 2
	WireFormatWelcome        WireFormat = 3
	WireFormatGroupInfo      WireFormat = 4
	WireFormatKeyPackage     WireFormat = 5
)

// PSKType is the kind of a pre-shared key (RFC 9420 §8.4).
type PSKType uint8

// PSK types.
const (
	PSKTypeExternal   PSKType = 1
	PSKTypeResumption PSKType = 2
)

// ResumptionPSKUsage is the purpose of a resumption PSK (RFC 9420 §8.4).
type ResumptionPSKUsage uint8

// Resumption PSK usages.
const (
	ResumptionPSKUsageApplication ResumptionPSKUsage = 1
	ResumptionPSKUsageReInit      ResumptionPSKUsage = 2
	ResumptionPSKUsageBranch      ResumptionPSKUsage = 3
)

// NodeType is the kind of a ratchet tree node (RFC 9420 §7.8).
type NodeType uint8

// Node types.
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// ProposalOrRefType says whether a commit carries a proposal by value or
// by reference (RFC 9420 §12.4).
type ProposalOrRefType uint8

// Proposal-or-reference types.
const (
	ProposalOrRefTypeProposal  ProposalOrRefType = 1
	ProposalOrRefTypeReference ProposalOrRefType = 2
)

// IsGREASE reports whether v is one of the GREASE values of RFC 9420
// §13.5: 0x0A0A, 0x1A1A, ..., 0xEAEA.
func IsGREASE(v uint16) bool {
	return v&0x0F0F == 0x0A0A && v>>12 == (v>>4)&0xF && v != 0xFAFA
}

func (v ProtocolVersion) String() string {
	if v == MLS10 {
		return "mls10"
	}
	return fmt.Sprintf("ProtocolVersion(%d)", uint16(v))
}

func (v ExtensionType) String() string {
	switch v {
	case ExtensionTypeApplicationID:
		return "application_id"
	case ExtensionTypeRatchetTree:
		return "ratchet_tree"
	case ExtensionTypeRequiredCapabilities:
		return "required_capabilities"
	case ExtensionTypeExternalPub:
		return "external_pub"
	case ExtensionTypeExternalSenders:
		return "external_senders"
	}
	return fmt.Sprintf("ExtensionType(0x%04x)", uint16(v))
}

func (v ProposalType) String() string {
	switch v {
	case ProposalTypeAdd:
		return "add"
	case ProposalTypeUpdate:
		return "update"
	case ProposalTypeRemove:
		return "remove"
	case ProposalTypePSK:
		return "psk"
	case ProposalTypeReInit:
		return "reinit"
	case ProposalTypeExternalInit:
		return "external_init"
	case ProposalTypeGroupContextExtensions:
		return "group_context_extensions"
	}
	return fmt.Sprintf("ProposalType(0x%04x)", uint16(v))
}

func (v CredentialType) String() string {
	switch v {
	case CredentialTypeBasic:
		return "basic"
	case CredentialTypeX509:
		return "x509"
	}
	return fmt.Sprintf("CredentialType(0x%04x)", uint16(v))
}

func (v LeafNodeSource) String() string {
	switch v {
	case LeafNodeSourceKeyPackage:
		return "key_package"
	case LeafNodeSourceUpdate:
		return "update"
	case LeafNodeSourceCommit:
		return "commit"
	}
	return fmt.Sprintf("LeafNodeSource(%d)", uint8(v))
}

func (v SenderType) String() string {
	switch v {
	case SenderTypeMember:
		return "member"
	case SenderTypeExternal:
		return "external"
	case SenderTypeNewMemberProposal:
		return "new_member_proposal"
	case SenderTypeNewMemberCommit:
		return "new_member_commit"
	}
	return fmt.Sprintf("SenderType(%d)", uint8(v))
}

func (v ContentType) String() string {
	switch v {
	case ContentTypeApplication:
		return "application"
	case ContentTypeProposal:
		return "proposal"
	case ContentTypeCommit:
		return "commit"
	}
	return fmt.Sprintf("ContentType(%d)", uint8(v))
}

func (v WireFormat) String() string {
	switch v {
	case WireFormatPublicMessage:
		return "mls_public_message"
	case WireFormatPrivateMessage:
		return "mls_private_message"
	case WireFormatWelcome:
		return "mls_welcome"
	case WireFormatGroupInfo:
		return "mls_group_info"
	case WireFormatKeyPackage:
		return "mls_key_package"
	}
	return fmt.Sprintf("WireFormat(%d)", uint16(v))
}

func (v PSKType) String() string {
	switch v {
	case PSKTypeExternal:
		return "external"
	case PSKTypeResumption:
		return "resumption"
	}
	return fmt.Sprintf("PSKType(%d)", uint8(v))
}

func (v ResumptionPSKUsage) String() string {
	switch v {
	case ResumptionPSKUsageApplication:
		return "application"
	case ResumptionPSKUsageReInit:
		return "reinit"
	case ResumptionPSKUsageBranch:
		return "branch"
	}
	return fmt.Sprintf("ResumptionPSKUsage(%d)", uint8(v))
}

func (v NodeType) String() string {
	switch v {
	case NodeTypeLeaf:
		return "leaf"
	case NodeTypeParent:
		return "parent"
	}
	return fmt.Sprintf("NodeType(%d)", uint8(v))
}

// Valid reports whether v is a content type defined by RFC 9420.
func (v ContentType) Valid() bool { return v >= ContentTypeApplication && v <= ContentTypeCommit }

// Valid reports whether v is a sender type defined by RFC 9420.
func (v SenderType) Valid() bool { return v >= SenderTypeMember && v <= SenderTypeNewMemberCommit }

// Valid reports whether v is a wire format defined by RFC 9420.
func (v WireFormat) Valid() bool { return v >= WireFormatPublicMessage && v <= WireFormatKeyPackage }

// Valid reports whether v is a proposal type defined by RFC 9420.
func (v ProposalType) Valid() bool {
	return v >= ProposalTypeAdd && v <= ProposalTypeGroupContextExtensions
}
