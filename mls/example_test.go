package mls_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/suite"
)

// Alice creates a group, adds Bob with a commit and a Welcome, and they
// exchange an encrypted message.
func Example() {
	const cs = suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519
	alice, err := mls.NewGroup(cs, mls.BasicCredential([]byte("alice")))
	if err != nil {
		log.Fatal(err)
	}
	// Bob publishes a KeyPackage and keeps the bundle's private keys.
	bobKP, err := mls.GenerateKeyPackage(cs, mls.BasicCredential([]byte("bob")))
	if err != nil {
		log.Fatal(err)
	}
	res, err := alice.Add([][]byte{bobKP.Bytes()})
	if err != nil {
		log.Fatal(err)
	}
	// res.Commit goes to the existing members (none besides Alice here);
	// once the delivery service accepted it, Alice merges it.
	if _, err := alice.MergePendingCommit(); err != nil {
		log.Fatal(err)
	}
	bob, err := mls.Join(res.Welcome, bobKP)
	if err != nil {
		log.Fatal(err)
	}
	ct, err := alice.Encrypt([]byte("hi bob"))
	if err != nil {
		log.Fatal(err)
	}
	p, err := bob.ProcessMessage(ct)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s from leaf %d in epoch %d\n", p.Application, p.Sender.Leaf, bob.Epoch())
	fmt.Println("same epoch authenticator:", bytes.Equal(alice.EpochAuthenticator(), bob.EpochAuthenticator()))
	// Output:
	// hi bob from leaf 0 in epoch 1
	// same epoch authenticator: true
}
