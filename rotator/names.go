package rotator

import "strconv"

// CredentialName is the deterministic issuer-side name of a generation.
func CredentialName(key string, gen int) string {
	return key + "-v" + strconv.Itoa(gen)
}

// IdempotencyKey is the key a mint intent sends to an issuer that honours
// idempotency keys (IdempotentMinter): the same for every attempt of the
// intent — after a failed call, after a crash, on another daemon — and
// different for any other intent (another rotation, or another generation
// of the same rotation after an abandon). It is built from what the intent
// records, never from a secret.
func IdempotencyKey(rotationID string, gen int) string {
	return "rekey-" + rotationID + "-v" + strconv.Itoa(gen)
}
