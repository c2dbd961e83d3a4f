package producer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
)

// tlsConfig is the base TLS configuration for pulsar+ssl:// URLs; nil for plain pulsar://.
// Credentials may add a private CA (RootCAs) and a client certificate afterwards.
//
// Go verifies the host name whenever it verifies the chain, so turning host name checks off while
// keeping the chain check needs a verifier of our own.
func (o Options) tlsConfig() *tls.Config {
	if !strings.HasPrefix(o.ServiceURL, "pulsar+ssl://") {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case o.TLSAllowInsecure:
		cfg.InsecureSkipVerify = true
	case !o.TLSValidateHostname:
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("broker presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			// cfg.RootCAs is read now, after credentials may have set a private CA.
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: cfg.RootCAs, Intermediates: inter})
			return err
		}
	}
	return cfg
}
