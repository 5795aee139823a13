package app

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/rekeyhq/rekey/internal/textcheck"
)

// printable answers 400 unless every text field of body (a decoded
// request: struct string fields, embedded structs included, by their JSON
// names) is printable text: valid UTF-8 without control characters. What
// people type (a reason, a comment, a user) is stored and shown by
// `rekey show`, the audit trail and notifications: an escape sequence or a
// carriage return in it could rewrite a terminal's screen. The submitted
// secret is not text people read, and is never shown.
func (a *admin) printable(w http.ResponseWriter, body any) bool {
	if err := printableFields(reflect.Indirect(reflect.ValueOf(body))); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

func printableFields(v reflect.Value) error {
	if v.Kind() != reflect.Struct {
		return nil
	}
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		if f.Anonymous {
			if err := printableFields(fv); err != nil {
				return err
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if fv.Kind() != reflect.String || name == "secret" || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if err := PrintableText(name, fv.String()); err != nil {
			return err
		}
	}
	return nil
}

// PrintableText refuses s unless it is valid UTF-8 without control
// characters (C0, DEL, C1: newlines and escape sequences included) or
// bidirectional overrides, naming the field: the same rule as the inbound
// webhooks' (internal/textcheck).
func PrintableText(field, s string) error {
	if !textcheck.Printable(s) {
		return fmt.Errorf("%s: must be printable text (no control characters such as escape sequences or line breaks)", field)
	}
	return nil
}
