package departure

import "github.com/rekeyhq/rekey/webhooks/internal/inbound"

// Config of the departure webhook: the signing secret and the accepted clock
// skew, shared with the other Standard-Webhooks-signed endpoints.
//
//	webhooks:
//	  - name: hr
//	    type: departure
//	    secret_env: REKEY_DEPARTURE_SECRET   # or secret_file; required
//	    tolerance: 5m                       # default: accepted clock skew, both ways
type Config = inbound.SignedConfig

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config { return inbound.DefaultSignedConfig() }
