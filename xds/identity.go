package xds

import (
	"fmt"
	"net"
	"strconv"
)

// NodeID returns the node id: flagValue when it is set, otherwise
// "<POD_NAMESPACE>.<POD_NAME>" read through getenv (os.Getenv in production).
// The result is validated with ValidateNodeID.
func NodeID(flagValue string, getenv func(string) string) (string, error) {
	id := flagValue
	if id == "" {
		ns, name := getenv("POD_NAMESPACE"), getenv("POD_NAME")
		switch {
		case ns == "" && name == "":
			return "", fmt.Errorf("%w node id: not set; give one (e.g. --node-id default.agent-0) or set POD_NAMESPACE and POD_NAME (Kubernetes downward API)", ErrInvalid)
		case ns == "" || name == "":
			return "", fmt.Errorf("%w node id: POD_NAMESPACE %q and POD_NAME %q must both be set", ErrInvalid, ns, name)
		}
		id = ns + "." + name
	}
	if err := ValidateNodeID(id); err != nil {
		return "", err
	}
	return id, nil
}

// AdvertiseAddress returns the address other sidecars dial: flagValue when it
// is set, otherwise POD_IP (read through getenv) joined with peerPort. The
// result is validated with ValidateAddress.
func AdvertiseAddress(flagValue string, peerPort int, getenv func(string) string) (string, error) {
	addr := flagValue
	if addr == "" {
		ip := getenv("POD_IP")
		if ip == "" {
			return "", fmt.Errorf("%w advertised address: not set; give one (e.g. --advertise-address 10.0.0.7:46358) or set POD_IP (Kubernetes downward API)", ErrInvalid)
		}
		if net.ParseIP(ip) == nil {
			return "", fmt.Errorf("%w advertised address: POD_IP %q is not an IP address", ErrInvalid, truncate(ip))
		}
		addr = net.JoinHostPort(ip, strconv.Itoa(peerPort))
	}
	if err := ValidateAddress(addr); err != nil {
		return "", err
	}
	return addr, nil
}
