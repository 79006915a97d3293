package controlplane

import (
	"errors"
	"fmt"
)

// ErrUnknownNode is returned by a Store for a node it does not hold.
var ErrUnknownNode = errors.New("unknown node")

func errUnknownNode(id string) error { return fmt.Errorf("%w %q", ErrUnknownNode, id) }
