package authtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Issuer is a small OAuth2 authorization server on 127.0.0.1: the OpenID discovery document and a
// token endpoint for the client_credentials grant, which mints RS256 JWTs with the broker's token key,
// so that client, issuer and broker all do their real part.
type Issuer struct {
	URL          string
	ClientID     string // also the role (subject) of the tokens it mints
	ClientSecret string
	Audience     string
	// Lifetime of the tokens it mints.
	Lifetime time.Duration

	key      *rsa.PrivateKey
	requests atomic.Int32
	granted  atomic.Int32
}

// StartIssuer starts the issuer; t.Cleanup stops it.
func StartIssuer(t testing.TB, key *rsa.PrivateKey, clientID, clientSecret, audience string) *Issuer {
	t.Helper()
	is := &Issuer{ClientID: clientID, ClientSecret: clientSecret, Audience: audience, Lifetime: time.Hour, key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"issuer": is.URL, "token_endpoint": is.URL + "/oauth/token"})
	})
	mux.HandleFunc("POST /oauth/token", is.token)
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	is.URL = srv.URL
	return is
}

// Requests and Granted count the token requests received and answered with a token.
func (is *Issuer) Requests() int { return int(is.requests.Load()) }
func (is *Issuer) Granted() int  { return int(is.granted.Load()) }

func (is *Issuer) token(w http.ResponseWriter, r *http.Request) {
	is.requests.Add(1)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if r.PostForm.Get("client_id") != is.ClientID || r.PostForm.Get("client_secret") != is.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if r.PostForm.Get("audience") != is.Audience {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_target"})
		return
	}
	now := time.Now()
	tok, err := is.mint(map[string]any{"sub": is.ClientID, "aud": is.Audience, "iss": is.URL,
		"iat": now.Unix(), "exp": now.Add(is.Lifetime).Unix()})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	is.granted.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(is.Lifetime.Seconds())})
}

// mint signs claims as an RS256 JWT (RFC 7519), as `pulsar tokens create` would with the same key.
func (is *Issuer) mint(claims map[string]any) (string, error) {
	enc := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b), err
	}
	header, err := enc(map[string]string{"alg": "RS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := enc(claims)
	if err != nil {
		return "", err
	}
	digest := sha256.Sum256([]byte(header + "." + payload))
	sig, err := rsa.SignPKCS1v15(rand.Reader, is.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return header + "." + payload + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
