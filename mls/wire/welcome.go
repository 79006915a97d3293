package wire

import "github.com/agwproject/agw/mls/codec"

// GroupInfo is the signed group state given to joiners (RFC 9420 §12.4.3).
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      []Extension
	ConfirmationTag []byte
	Signer          uint32
	Signature       []byte
}

func (v *GroupInfo) marshalContent(w *codec.Writer) {
	v.GroupContext.Marshal(w)
	marshalExtensions(w, v.Extensions)
	w.Opaque(v.ConfirmationTag)
	w.U32(v.Signer)
}

// Marshal writes the group info.
func (v *GroupInfo) Marshal(w *codec.Writer) {
	v.marshalContent(w)
	w.Opaque(v.Signature)
}

// Unmarshal reads the group info.
func (v *GroupInfo) Unmarshal(r *codec.Reader) {
	*v = GroupInfo{}
	v.GroupContext.Unmarshal(r)
	v.Extensions = unmarshalExtensions(r)
	v.ConfirmationTag = r.Opaque()
	v.Signer = r.U32()
	v.Signature = r.Opaque()
}

// TBS returns the encoded GroupInfoTBS: everything but the signature.
func (v *GroupInfo) TBS() []byte {
	w := codec.NewWriter(512)
	v.marshalContent(w)
	return w.MustBytes()
}

// GroupSecrets is the plaintext of EncryptedGroupSecrets (RFC 9420
// §12.4.3.1). PathSecret nil means absent.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   []byte
	PSKs         []PreSharedKeyID
}

// Marshal writes the group secrets.
func (v *GroupSecrets) Marshal(w *codec.Writer) {
	w.Opaque(v.JoinerSecret)
	w.Optional(v.PathSecret != nil, func(w *codec.Writer) { w.Opaque(v.PathSecret) })
	w.Vector(func(w *codec.Writer) {
		for i := range v.PSKs {
			v.PSKs[i].Marshal(w)
		}
	})
}

// Unmarshal reads the group secrets.
func (v *GroupSecrets) Unmarshal(r *codec.Reader) {
	*v = GroupSecrets{}
	v.JoinerSecret = r.Opaque()
	r.Optional(func(r *codec.Reader) {
		v.PathSecret = r.Opaque()
		if v.PathSecret == nil && r.Err() == nil {
			v.PathSecret = []byte{}
		}
	})
	r.Elements(func(r *codec.Reader) {
		var p PreSharedKeyID
		p.Unmarshal(r)
		v.PSKs = append(v.PSKs, p)
	})
	if r.Err() != nil {
		v.PSKs = nil
	}
}

// EncryptedGroupSecrets is the GroupSecrets encrypted to one new member,
// named by the KeyPackageRef of its KeyPackage (RFC 9420 §12.4.3.1).
type EncryptedGroupSecrets struct {
	NewMember             []byte
	EncryptedGroupSecrets HPKECiphertext
}

// Marshal writes the entry.
func (v *EncryptedGroupSecrets) Marshal(w *codec.Writer) {
	w.Opaque(v.NewMember)
	v.EncryptedGroupSecrets.Marshal(w)
}

// Unmarshal reads the entry.
func (v *EncryptedGroupSecrets) Unmarshal(r *codec.Reader) {
	v.NewMember = r.Opaque()
	v.EncryptedGroupSecrets.Unmarshal(r)
}

// Welcome brings new members into a group (RFC 9420 §12.4.3.1).
type Welcome struct {
	CipherSuite        CipherSuite
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// Marshal writes the welcome.
func (v *Welcome) Marshal(w *codec.Writer) {
	w.U16(uint16(v.CipherSuite))
	w.Vector(func(w *codec.Writer) {
		for i := range v.Secrets {
			v.Secrets[i].Marshal(w)
		}
	})
	w.Opaque(v.EncryptedGroupInfo)
}

// Unmarshal reads the welcome.
func (v *Welcome) Unmarshal(r *codec.Reader) {
	*v = Welcome{CipherSuite: CipherSuite(r.U16())}
	r.Elements(func(r *codec.Reader) {
		var s EncryptedGroupSecrets
		s.Unmarshal(r)
		v.Secrets = append(v.Secrets, s)
	})
	if r.Err() != nil {
		v.Secrets = nil
		return
	}
	v.EncryptedGroupInfo = r.Opaque()
}
