package webapi

import (
	"errors"
	"fmt"
	"strings"
)

// Prefix prefixes every error joined in err with "prefix.", so that a
// nested section's "url: required" reads "verify.url: required". A nil err
// stays nil.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		if _, nested := e.(interface{ Unwrap() []error }); nested {
			out = append(out, Prefix(prefix, e))
			continue
		}
		out = append(out, fmt.Errorf("%s.%w", prefix, e))
	}
	return errors.Join(out...)
}

// ValidToken reports whether s is an RFC 9110 token, as HTTP methods and
// header names must be.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
