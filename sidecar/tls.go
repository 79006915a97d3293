package sidecar

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
)

// loadTLS builds the peer listener's and dialer's credentials from the
// configured files. With a CA file, both sides require and verify the
// other's certificate (mutual TLS).
func loadTLS(c *Config) (server, client credentials.TransportCredentials, err error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("AGW_TLS_CERT_FILE %q / AGW_TLS_KEY_FILE %q: %w", c.TLSCertFile, c.TLSKeyFile, err)
	}
	var pool *x509.CertPool
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("AGW_TLS_CA_FILE: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("AGW_TLS_CA_FILE %q: no PEM certificates found", c.TLSCAFile)
		}
	}
	sc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if pool != nil {
		sc.ClientAuth = tls.RequireAndVerifyClientCert
		sc.ClientCAs = pool
	}
	cc := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13, ServerName: c.TLSServerName}
	return credentials.NewTLS(sc), credentials.NewTLS(cc), nil
}
