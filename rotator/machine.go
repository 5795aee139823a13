package rotator

import "strconv"

// next returns the phase that follows p for a rotation in mode m. bootstrap
// rotations (no old credential) skip the drain, revoke and watch phases.
func next(p Phase, m Mode, hasOld bool, decommission bool) Phase {
	if m == ModeEmergency {
		switch p {
		case PhaseRevoking:
			if decommission {
				return PhaseRemoving
			}
			return PhaseMinting
		case PhaseRemoving:
			return PhaseDone
		case PhaseMinting:
			return PhaseStaging
		case PhaseStaging:
			return PhaseCuttingOver
		case PhaseCuttingOver:
			return PhaseVerifying
		case PhaseVerifying:
			return PhaseCleaning
		case PhaseCleaning:
			return PhaseDone
		}
		return PhaseFailed
	}
	switch p {
	case PhaseAwaitingApproval:
		return PhaseMinting
	case PhaseMinting:
		return PhaseStaging
	case PhaseStaging:
		return PhaseVerifying
	case PhaseVerifying:
		return PhaseCuttingOver
	case PhaseCuttingOver:
		if !hasOld {
			return PhaseCleaning
		}
		return PhaseDraining
	case PhaseDraining:
		return PhaseRevoking
	case PhaseRevoking:
		return PhaseWatching
	case PhaseWatching:
		return PhaseCleaning
	case PhaseCleaning:
		return PhaseDone
	}
	return PhaseFailed
}

// oldStillLive reports whether, in phase p of a staged rotation, the old
// credential has not been revoked yet — so the rotation can still be rolled
// back instead of holding for a human.
func oldStillLive(r *Rotation) bool {
	if r.Mode == ModeEmergency {
		return false
	}
	switch r.Phase {
	case PhaseAwaitingApproval, PhaseMinting, PhaseStaging, PhaseVerifying, PhaseCuttingOver, PhaseDraining:
		return true
	case PhaseRevoking:
		// Only while waiting for approval: once the revoke call may have been
		// issued, the old credential must be treated as gone.
		return r.Hold == HoldApproval
	}
	return false
}

// CredentialName is the deterministic issuer-side name of a generation.
func CredentialName(key string, gen int) string {
	return key + "-v" + strconv.Itoa(gen)
}
