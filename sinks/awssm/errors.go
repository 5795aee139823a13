package awssm

import (
	"context"
	"errors"
	"fmt"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/rekeyhq/rekey/rotator"
)

// classify turns a failed SDK call into an error the engine can act on. It
// never wraps the SDK's error, whose text may quote the service's message:
// the new text holds the error code and HTTP status only.
func classify(what string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		detail := fmt.Errorf("%s: %s", what, code)
		switch code {
		case "ResourceNotFoundException":
			return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%w: %w", detail, rotator.ErrNotFound))
		case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
			"InvalidClientTokenId", "ExpiredTokenException", "SignatureDoesNotMatch", "MissingAuthenticationToken":
			return rotator.PermanentReason(rotator.ReasonAuth, detail)
		case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded":
			return rotator.WithReason(rotator.ReasonRateLimited, detail)
		case "InternalServiceError", "InternalFailure", "ServiceUnavailable":
			return rotator.WithReason(rotator.ReasonTransient, detail)
		case "ResourceExistsException":
			return rotator.WithReason(rotator.ReasonConflict, fmt.Errorf("%w: %w", detail, rotator.ErrConflict))
		case "InvalidParameterException", "InvalidRequestException", "MalformedPolicyDocumentException",
			"EncryptionFailure", "DecryptionFailure", "PreconditionNotMetException", "LimitExceededException":
			return rotator.PermanentReason(rotator.ReasonInvalid, detail)
		}
		if re, ok := errors.AsType[*awshttp.ResponseError](err); ok && re.HTTPStatusCode() > 0 {
			return rotator.HTTPStatusError(what, re.HTTPStatusCode(), code)
		}
		return rotator.WithReason(rotator.ReasonTransient, detail)
	}
	// An answer that is not a service error (moto under load answers 500
	// with an HTML page): its status decides.
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 400 {
		return rotator.HTTPStatusError(what, re.HTTPStatusCode(), "(unreadable answer)")
	}
	if re != nil {
		return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: reading the answer failed (HTTP %d)", what, re.HTTPStatusCode()))
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %w", what, context.DeadlineExceeded))
	case errors.Is(err, context.Canceled):
		return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %w", what, context.Canceled))
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %s", what, oe.Error()))
	}
	return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: request failed", what))
}

// errorCode is the service's error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// notManaged refuses a secret rekey does not own.
func (s *Sink) notManaged(id string) error {
	return rotator.PermanentReason(rotator.ReasonNotManaged,
		fmt.Errorf("awssm: %s: %w (no tag %s=%s; set adopt: true to take it over)", id, rotator.ErrNotManaged, s.cfg.ManagedTagKey, s.cfg.ManagedTagValue))
}
