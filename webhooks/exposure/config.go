package exposure

import "github.com/rekeyhq/rekey/webhooks/internal/inbound"

// Config of the generic exposure webhook: the signing secret and the accepted clock
// skew, shared with the other Standard-Webhooks-signed endpoints.
//
//	webhooks:
//	  - name: exposure
//	    type: exposure
//	    secret_env: REKEY_EXPOSURE_SECRET   # or secret_file; required
//	    tolerance: 5m                       # default: accepted clock skew, both ways
type Config = inbound.SignedConfig

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config { return inbound.DefaultSignedConfig() }
