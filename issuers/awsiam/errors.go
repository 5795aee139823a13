package awsiam

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/rekeyhq/rekey/rotator"
)

// awsError keeps the SDK error reachable (errors.As) but prints only the
// API error code and message, or the transport cause: never a request.
type awsError struct {
	msg string
	err error
}

func (e *awsError) Error() string { return e.msg }
func (e *awsError) Unwrap() error { return e.err }

// errorCode returns the AWS API error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// classify names the call (what) and classifies an SDK error: throttling
// rate_limited; service failures, expired credentials and transport errors
// transient; denied or unrecognised credentials permanent auth; other API
// errors (NoSuchEntity, LimitExceeded, invalid input) permanent invalid.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		// Its cause may quote the answer, which for CreateAccessKey holds
		// the secret access key.
		return rotator.WithReason(rotator.ReasonTransient, &awsError{msg: what + ": the answer could not be decoded", err: err})
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %w", what, err))
		}
		return rotator.WithReason(rotator.ReasonTransient, &awsError{msg: fmt.Sprintf("%s: %v", what, err), err: err})
	}
	e := &awsError{msg: fmt.Sprintf("%s: %s: %s", what, ae.ErrorCode(), ae.ErrorMessage()), err: err}
	switch ae.ErrorCode() {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException":
		return rotator.WithReason(rotator.ReasonRateLimited, e)
	case "ServiceFailure", "ServiceUnavailable", "InternalFailure", "InternalError",
		"ExpiredToken", "ExpiredTokenException", "RequestExpired":
		return rotator.WithReason(rotator.ReasonTransient, e)
	case "ConcurrentModification":
		return rotator.WithReason(rotator.ReasonConflict, e)
	case "AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"UnrecognizedClientException", "MissingAuthenticationToken", "IncompleteSignature":
		return rotator.PermanentReason(rotator.ReasonAuth, e)
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == 429) {
		return rotator.WithReason(rotator.ReasonTransient, e)
	}
	return rotator.PermanentReason(rotator.ReasonInvalid, e)
}
