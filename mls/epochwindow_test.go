package mls

import (
	"fmt"
	"testing"
)

// TestEpochWindow: with WithEpochWindow(n), application messages of the n
// epochs before the current one still open after their commits; older ones
// are refused with ErrWrongEpoch, and a window of 0 keeps none.
func TestEpochWindow(t *testing.T) {
	for _, window := range []int{0, 1, 3} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) {
			alice, bob := twoMembers(t, WithEpochWindow(window))
			// One message of each of 4 epochs, all arriving after the
			// last commit: the message of epoch e is len-1-i epochs old.
			var msgs [][]byte
			for i := range 4 {
				m, err := alice.Encrypt(fmt.Appendf(nil, "epoch %d", alice.Epoch()))
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, m)
				res, err := alice.Update()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := alice.MergePendingCommit(); err != nil {
					t.Fatal(err)
				}
				if _, err := bob.ProcessMessage(res.Commit); err != nil {
					t.Fatalf("commit %d: %v", i, err)
				}
			}
			for i, m := range msgs {
				age := len(msgs) - i // epochs between the message's and bob's
				p, err := bob.ProcessMessage(m)
				if age <= window {
					if err != nil || string(p.Application) != fmt.Sprintf("epoch %d", p.Epoch) {
						t.Fatalf("message %d epochs old refused with window %d: %v", age, window, err)
					}
					continue
				}
				expectErr(t, err, ErrWrongEpoch)
			}
		})
	}
}
