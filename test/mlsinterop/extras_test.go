package mlsinterop

import (
	"bytes"
	"testing"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/suite"
)

// TestCommitVariants covers commit shapes the scenarios do not: an Add with
// a forced UpdatePath (new members are left out of the path encryption),
// the ratchet tree out of band for a ts-mls joiner, several proposals from
// both implementations committed together, proposals as PrivateMessage from
// ts-mls, and an Add plus a Remove in one commit.
func TestCommitVariants(t *testing.T) {
	forSuites(t, func(t *testing.T, d *Driver, s suite.ID) {
		a := newGo(t, "a", s)
		b := &tsMember{name: "b", d: d}
		c := &tsMember{name: "c", d: d}

		// Go adds two ts-mls members with a path and without the
		// ratchet_tree extension; they get the tree out of band.
		res := a.merge(t)(a.g.Add([][]byte{tsKeyPackage(t, d, "b", s), tsKeyPackage(t, d, "c", s)},
			mls.WithPath(), mls.WithoutRatchetTreeExtension(), mls.WithHandshakeEncryption(true)))
		tree := a.g.RatchetTree()
		call(t, d, "join", map[string]any{"name": "b", "welcome": res.Welcome, "ratchetTree": tree})
		call(t, d, "join", map[string]any{"name": "c", "welcome": res.Welcome, "ratchetTree": tree})
		checkAgree(t, 1, a, b, c)

		// Proposals from both sides in one commit by Go: ts-mls b proposes
		// adding Go e (PrivateMessage), Go a proposes removing c.
		kpe := goKeyPackage(t, "e", s)
		pb := call(t, d, "propose", map[string]any{"name": "b", "kind": "add", "keyPackage": kpe.Bytes(), "public": false})
		deliver(t, pb.Message, "proposal", a, c)
		cLeaf := call(t, d, "state", map[string]any{"name": "c"}).LeafIndex
		pa, err := a.g.ProposeRemove(cLeaf)
		if err != nil {
			t.Fatalf("a: propose remove: %v", err)
		}
		deliver(t, pa, "proposal", b, c)
		res = a.merge(t)(a.g.Commit(nil))
		deliver(t, res.Commit, "commit", b)
		e := goJoin(t, "e", res.Welcome, kpe)
		checkAgree(t, 2, a, b, e)
		// Removes apply before Adds (RFC 9420 §12.3), so e takes c's old
		// leaf. ts-mls 1.6.4 decides "removed" by looking at its own leaf
		// after all proposals, sees e there, and then fails to decrypt the
		// path ("No overlap between provided private keys and update
		// path") instead of reporting its removal. Either way c must not
		// follow into the new epoch.
		if _, _, err := c.Process(res.Commit); err != nil {
			t.Logf("ts-mls c on the commit removing it (its leaf reused by an Add): %v", err)
		} else if st := call(t, d, "state", map[string]any{"name": "c"}); st.Active || st.Epoch != 1 {
			t.Fatalf("removed ts-mls c: active %v, epoch %d", st.Active, st.Epoch)
		}
		secret := []byte("after c left")
		msg := a.Encrypt(t, secret)
		deliver(t, msg, "application", b, e)
		if _, got, err := c.Process(msg); err == nil || bytes.Contains(got, secret) {
			t.Fatalf("removed ts-mls member decrypted a message of the next epoch (err %v)", err)
		}

		// ts-mls b commits an Add of ts-mls f and a Remove of Go e by value,
		// as a PrivateMessage.
		fKP := tsKeyPackage(t, d, "f", s)
		f := &tsMember{name: "f", d: d}
		cm := call(t, d, "commit", map[string]any{"name": "b", "keyPackages": []any{Hex(fKP)}, "leaves": []uint32{e.g.LeafIndex()}, "public": false})
		deliver(t, cm.Commit, "commit", a, e)
		if !e.g.Removed() {
			t.Fatal("Go e does not know it was removed")
		}
		call(t, d, "join", map[string]any{"name": "f", "welcome": cm.Welcome})
		checkAgree(t, 3, a, b, f)
		checkMessages(t, a, b, f)
	})
}

// TestApplicationMessages covers padding, authenticated data and delivery
// out of order in both directions.
func TestApplicationMessages(t *testing.T) {
	forSuites(t, func(t *testing.T, d *Driver, s suite.ID) {
		a := newGo(t, "a", s)
		res := a.merge(t)(a.g.Add([][]byte{tsKeyPackage(t, d, "b", s)}))
		call(t, d, "join", map[string]any{"name": "b", "welcome": res.Welcome})
		b := &tsMember{name: "b", d: d}

		data := [][]byte{[]byte("one"), bytes.Repeat([]byte{0}, 1000), []byte{}, []byte("four")}
		var fromGo, fromTS [][]byte
		for i, p := range data {
			m, err := a.g.Encrypt(p, mls.WithPadding(7*i), mls.WithAuthenticatedData([]byte{byte(i)}))
			if err != nil {
				t.Fatalf("a: encrypt: %v", err)
			}
			fromGo = append(fromGo, m)
			fromTS = append(fromTS, b.Encrypt(t, p))
		}
		for _, i := range []int{2, 0, 3, 1} {
			kind, got, err := b.Process(fromGo[i])
			if err != nil || kind != "application" || !bytes.Equal(got, data[i]) {
				t.Fatalf("ts-mls: Go message %d out of order: kind %q err %v, data %q", i, kind, err, got)
			}
			got, err = a.g.Decrypt(fromTS[i])
			if err != nil || !bytes.Equal(got, data[i]) {
				t.Fatalf("Go: ts-mls message %d out of order: err %v, data %q", i, err, got)
			}
		}
		// A replayed message is refused by both.
		if _, err := a.g.Decrypt(fromTS[0]); err == nil {
			t.Fatal("Go accepted a replayed ts-mls message")
		}
		if _, _, err := b.Process(fromGo[0]); err == nil {
			t.Fatal("ts-mls accepted a replayed Go message")
		}
	})
}
