package rotator

import "strconv"

// CredentialName is the deterministic issuer-side name of a generation.
func CredentialName(key string, gen int) string {
	return key + "-v" + strconv.Itoa(gen)
}
