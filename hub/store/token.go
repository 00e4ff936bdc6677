package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// NewToken returns a new random token: 32 bytes from crypto/rand,
// base64url without padding (43 characters).
func NewToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken is what the store keeps of a token: its SHA-256, lower-case
// hex. Tokens are random and long, so a plain hash suffices (no salt or
// slow hash needed, unlike passwords).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
