package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/rekeyhq/rekey/auth"
)

// Families of adapters, as named in the file.
const (
	FamilyIssuers   = "issuers"
	FamilySinks     = "sinks"
	FamilyNotifiers = "notifiers"
	FamilyTraffic   = "traffic"
	// BuiltinTraffic is the traffic source every configuration has: type
	// fixed, observing nothing (a drain that names no source uses it).
	BuiltinTraffic = "fixed"
	FamilyWebhooks = "webhooks"
)

// KnownTypes lists the adapter types of each family that this build offers.
type KnownTypes map[string][]string

var (
	keyNameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	adapterNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	cronParser    = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// Validate checks everything that does not need an adapter's own
// configuration: the daemon and store settings, adapter names and types,
// and every reference from a key to an adapter. It returns all problems.
//
// BuiltinTraffic, the traffic source that observes nothing, may be named
// without being declared.
func (c *Config) Validate(known KnownTypes) (errs Errors) {
	defer func() {
		if len(errs) > 0 {
			_ = blameEnv(errs, c.fromEnv) // in place
		}
	}()
	c.validateDaemon(&errs)
	c.validateSafety(&errs)
	c.validateStore(&errs)
	c.validateAudit(&errs)
	c.validateAuth(&errs)
	c.validateCerts(&errs)
	names := map[string][]string{}
	for _, fam := range []struct {
		name string
		list []Adapter
	}{{FamilyIssuers, c.Issuers}, {FamilySinks, c.Sinks}, {FamilyNotifiers, c.Notifiers}, {FamilyTraffic, c.Traffic}, {FamilyWebhooks, c.Webhooks}} {
		names[fam.name] = validateAdapters(fam.name, fam.list, known[fam.name], &errs)
	}
	if !slices.Contains(names[FamilyTraffic], BuiltinTraffic) {
		// Built in: a drain may name it without declaring it.
		names[FamilyTraffic] = append(names[FamilyTraffic], BuiltinTraffic)
	}
	seenRoute := map[string]int{}
	for i, w := range c.Webhooks {
		if j, dup := seenRoute[w.Type]; dup {
			errs.Add(fmt.Sprintf("webhooks[%d].type", i), "a second %q webhook (also webhooks[%d]); each type serves one route", w.Type, j)
		}
		seenRoute[w.Type] = i
	}
	c.validateSettings("defaults", c.Defaults, names, &errs)
	seen := make(map[string]int, len(c.Keys))
	// Paths are made only for errors: 100,000 keys are checked on every load.
	for i, k := range c.Keys {
		p := "keys[" + strconv.Itoa(i) + "]"
		switch {
		case k.Name == "":
			errs.Add(p+".name", "required")
		case !validKeyName(k.Name):
			errs.Add(p+".name", "%q must be lowercase letters, digits, '.', '_' or '-' (at most 128)", k.Name)
		default:
			if j, dup := seen[k.Name]; dup {
				errs.Add(p+".name", "duplicate key %q (also keys[%d])", k.Name, j)
			}
			seen[k.Name] = i
		}
		if k.Issuer == "" {
			errs.Add(p+".issuer", "required")
		} else if !slices.Contains(names[FamilyIssuers], k.Issuer) {
			checkRef(&errs, p+".issuer", "issuer", k.Issuer, names[FamilyIssuers])
		}
		if len(k.Sinks) == 0 {
			errs.Add(p+".sinks", "at least one sink is required")
		}
		for j, b := range k.Sinks {
			bp := func() string { return p + ".sinks[" + strconv.Itoa(j) + "]" }
			if b.Sink == "" {
				errs.Add(bp()+".sink", "required")
			} else if !slices.Contains(names[FamilySinks], b.Sink) {
				checkRef(&errs, bp()+".sink", "sink", b.Sink, names[FamilySinks])
			}
			for l := 0; l < j; l++ {
				if k.Sinks[l].Sink == b.Sink && k.Sinks[l].Path == b.Path {
					errs.Add(bp(), "same sink and path as sinks[%d]", l)
				}
			}
		}
		if k.Schedule != "" {
			if _, err := cronParser.Parse(k.Schedule); err != nil {
				errs.Add(p+".schedule", "invalid cron spec %q: %v", k.Schedule, err)
			}
		}
		for j, o := range k.Owners {
			if strings.TrimSpace(o) == "" {
				errs.Add(fmt.Sprintf("%s.owners[%d]", p, j), "empty owner")
			}
		}
		c.validateSettings(p, k.KeySettings, names, &errs)
		eff := c.Effective(k)
		if eff.Approval != nil && len(eff.Approval.Approvers) > 0 && eff.Approval.Required > len(eff.Approval.Approvers) {
			errs.Add(p+".approval.required", "%d approvals required but only %d approvers listed", eff.Approval.Required, len(eff.Approval.Approvers))
		}
	}
	return errs
}

// validKeyName is keyNameRE.MatchString(name), without the regexp
// engine: 100,000 key names are checked on every load.
func validKeyName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func (c *Config) validateDaemon(errs *Errors) {
	d := c.Daemon
	if _, port, err := net.SplitHostPort(d.Listen); err != nil {
		errs.Add("daemon.listen", "%q is not host:port", d.Listen)
	} else if n, err := strconv.Atoi(port); err == nil && (n < 0 || n > 65535) {
		errs.Add("daemon.listen", "port %d is out of range 0..65535 (0 picks a free port; see daemon.address_file)", n)
	}
	if d.AdminTokenEnv != "" && d.AdminTokenFile != "" {
		errs.Add("daemon.admin_token_env", "set only one of admin_token_env and admin_token_file")
	}
	if d.MetricsTokenEnv != "" && d.MetricsTokenFile != "" {
		errs.Add("daemon.metrics_token_env", "set only one of metrics_token_env and metrics_token_file")
	}
	if sock, ok := strings.CutPrefix(d.AdminListen, "unix:"); ok {
		if !filepath.IsAbs(sock) {
			errs.Add("daemon.admin_listen", "unix socket %q must be an absolute path (unix:/run/rekey/admin.sock)", sock)
		}
	} else if _, port, err := net.SplitHostPort(d.AdminListen); err != nil {
		errs.Add("daemon.admin_listen", "%q is neither host:port nor unix:/path", d.AdminListen)
	} else if n, err := strconv.Atoi(port); err == nil && (n < 0 || n > 65535) {
		errs.Add("daemon.admin_listen", "port %d is out of range 0..65535 (0 picks a free port; see daemon.admin_address_file)", n)
	} else if d.AdminListen == d.Listen && n != 0 {
		errs.Add("daemon.admin_listen", "%q is also daemon.listen: the admin API needs a listener of its own", d.AdminListen)
	}
	for _, f := range []struct{ path, v string }{{"daemon.address_file", d.AddressFile}, {"daemon.admin_address_file", d.AdminAddressFile}} {
		if f.v != "" && (strings.TrimSpace(f.v) != f.v || strings.HasSuffix(f.v, "/") || filepath.Base(f.v) == ".") {
			errs.Add(f.path, "%q is not a file path", f.v)
		}
	}
	if d.AdminAddressFile != "" && d.AdminAddressFile == d.AddressFile {
		errs.Add("daemon.admin_address_file", "the same file as daemon.address_file")
	}
	for _, t := range []struct {
		path string
		tls  TLS
	}{{"daemon.tls", d.TLS}, {"daemon.admin_tls", d.AdminTLS}} {
		if t.tls.Enabled() && (t.tls.CertFile == "" || t.tls.KeyFile == "") {
			errs.Add(t.path, "cert_file and key_file are both required")
		}
	}
	if _, err := cronParser.Parse(d.Schedule); err != nil {
		errs.Add("daemon.schedule", "invalid cron spec %q: %v", d.Schedule, err)
	}
	if d.Concurrency < 1 || d.Concurrency > 1024 {
		errs.Add("daemon.concurrency", "must be between 1 and 1024, got %d", d.Concurrency)
	}
	if d.PollInterval <= 0 {
		errs.Add("daemon.poll_interval", "must be positive")
	}
	if d.StepTimeout <= 0 {
		errs.Add("daemon.step_timeout", "must be positive")
	}
	if d.LeaseTTL < time.Second || d.LeaseTTL > 10*time.Minute {
		errs.Add("daemon.lease_ttl", "must be between 1s and 10m, got %s", d.LeaseTTL)
	}
	if d.RetryBase <= 0 || d.RetryMax < d.RetryBase {
		errs.Add("daemon.retry_base", "must be positive and at most retry_max")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, d.LogLevel) {
		errs.Add("daemon.log_level", "must be debug, info, warn or error, got %q", d.LogLevel)
	}
}

func (c *Config) validateSafety(errs *Errors) {
	b := c.Breaker
	if b.Max < -1 || b.Max == 0 || b.Max > 10000 {
		errs.Add("breaker.max", "must be between 1 and 10000, or -1 to disable the breaker; got %d", b.Max)
	}
	if b.Window <= 0 {
		errs.Add("breaker.window", "must be positive")
	}
	for i, s := range b.Exempt {
		if strings.TrimSpace(s) == "" {
			errs.Add(fmt.Sprintf("breaker.exempt[%d]", i), "empty source name")
		}
	}
	r := c.Retention
	if r.Outbox == 0 {
		errs.Add("retention.outbox", "must be positive, or negative to keep forever")
	}
	if r.Inbound == 0 {
		errs.Add("retention.inbound", "must be positive, or negative to keep forever")
	}
	if r.DigestWindow <= 0 {
		errs.Add("retention.digest_window", "must be positive")
	}
}

func (c *Config) validateStore(errs *Errors) {
	s := c.Store
	switch s.Type {
	case "sqlite":
		if s.Path == "" {
			errs.Add("store.path", "required for the sqlite store")
		}
		if s.Synchronous != "" && s.Synchronous != "normal" && s.Synchronous != "full" {
			errs.Add("store.synchronous", "must be normal or full, got %q", s.Synchronous)
		}
	case "postgres":
		if (s.DSNEnv == "") == (s.DSNFile == "") {
			errs.Add("store.dsn_env", "set exactly one of dsn_env and dsn_file for the postgres store")
		}
	default:
		errs.Add("store.type", "unknown store %q (known: postgres, sqlite)", s.Type)
	}
}

func validateAdapters(family string, list []Adapter, types []string, errs *Errors) []string {
	var names []string
	seen := map[string]int{}
	for i, a := range list {
		p := fmt.Sprintf("%s[%d]", family, i)
		switch {
		case a.Name == "":
			errs.Add(p+".name", "required")
		case !adapterNameRE.MatchString(a.Name):
			errs.Add(p+".name", "%q must be lowercase letters, digits, '.', '_' or '-'", a.Name)
		default:
			if j, dup := seen[a.Name]; dup {
				errs.Add(p+".name", "duplicate name %q (also %s[%d])", a.Name, family, j)
			}
			seen[a.Name] = i
			names = append(names, a.Name)
		}
		if a.Type == "" {
			errs.Add(p+".type", "required (known: %s)", strings.Join(types, ", "))
		} else if !slices.Contains(types, a.Type) {
			errs.Add(p+".type", "unknown %s type %q (known: %s)", strings.TrimSuffix(family, "s"), a.Type, strings.Join(types, ", "))
		}
	}
	return names
}

func (c *Config) validateSettings(p string, s KeySettings, names map[string][]string, errs *Errors) {
	if r := s.Reminders; r != nil {
		if r.Every < 0 || r.Every > 0 && r.Every < time.Second {
			errs.Add(p+".reminders.every", "must be at least 1s (0: the default, 1h)")
		}
		if r.EscalateAfter < 0 {
			errs.Add(p+".reminders.escalate_after", "must not be negative")
		}
		if r.SecretExpireAfter < 0 {
			errs.Add(p+".reminders.secret_expire_after", "must not be negative")
		}
	}
	if pol := s.Policies; pol != nil {
		if pol.MaxAge < 0 {
			errs.Add(p+".policies.max_age", "must not be negative")
		}
		if pol.MaxAge > 0 && pol.WarnBefore >= pol.MaxAge {
			errs.Add(p+".policies.warn_before", "must be shorter than max_age (%s)", pol.MaxAge)
		}
		if u := pol.Unauthorized; u != nil {
			if u.Source == "" {
				errs.Add(p+".policies.unauthorized.source", "required (a traffic source)")
			} else {
				checkRef(errs, p+".policies.unauthorized.source", "traffic source", u.Source, names[FamilyTraffic])
			}
			if u.Threshold < 0 {
				errs.Add(p+".policies.unauthorized.threshold", "must not be negative")
			}
		}
	}
	for j, w := range s.Windows {
		if _, err := ParseWindow(w); err != nil {
			errs.Add(fmt.Sprintf("%s.windows[%d]", p, j), "%v", err)
		}
	}
	if a := s.Approval; a != nil {
		for j, g := range a.Gates {
			if g != "start" && g != "revoke" {
				errs.Add(fmt.Sprintf("%s.approval.gates[%d]", p, j), "unknown gate %q (known: revoke, start)", g)
			}
		}
		if a.Required < 0 {
			errs.Add(p+".approval.required", "must not be negative")
		}
		if a.RevokeRequired < 0 {
			errs.Add(p+".approval.revoke_required", "must not be negative")
		}
	}
	if d := s.Drain; d != nil {
		if d.Source != "" {
			checkRef(errs, p+".drain.source", "traffic source", d.Source, names[FamilyTraffic])
		}
		if d.Source != "" && len(d.Sources) > 0 {
			errs.Add(p+".drain.sources", "set either source or sources, not both")
		}
		seen := map[string]bool{}
		for j, src := range d.Sources {
			checkRef(errs, fmt.Sprintf("%s.drain.sources[%d]", p, j), "traffic source", src, names[FamilyTraffic])
			if seen[src] {
				errs.Add(fmt.Sprintf("%s.drain.sources[%d]", p, j), "%q is listed twice", src)
			}
			seen[src] = true
		}
		for j, q := range d.Require {
			if q != "old_key_use" && q != "new_key_failures" {
				errs.Add(fmt.Sprintf("%s.drain.require[%d]", p, j), "unknown question %q (known: new_key_failures, old_key_use)", q)
			}
		}
		if d.ConsumersReloadWithin < 0 {
			errs.Add(p+".drain.consumers_reload_within", "must not be negative")
		}
		if d.MaxWait > 0 && d.MaxWait < d.QuietPeriod {
			errs.Add(p+".drain.max_wait", "must be at least quiet_period (%s)", d.QuietPeriod)
		}
	}
	for j, n := range s.Notify {
		checkRef(errs, fmt.Sprintf("%s.notify[%d]", p, j), "notifier", n, names[FamilyNotifiers])
	}
}

func checkRef(errs *Errors, path, what, name string, known []string) {
	if slices.Contains(known, name) {
		return
	}
	k := slices.Clone(known)
	sort.Strings(k)
	list := strings.Join(k, ", ")
	if list == "" {
		list = "none configured"
	}
	errs.Add(path, "unknown %s %q (known: %s)", what, name, list)
}

// Effective merges the defaults under a key's own settings.
func (c *Config) Effective(k Key) KeySettings {
	s := k.KeySettings
	d := c.Defaults
	if s.Policies == nil {
		s.Policies = d.Policies
	}
	if s.Windows == nil {
		s.Windows = d.Windows
	}
	if s.Approval == nil {
		s.Approval = d.Approval
	}
	if s.Drain == nil {
		s.Drain = d.Drain
	}
	if s.Watch == nil {
		s.Watch = d.Watch
	}
	if s.Verify == nil {
		s.Verify = d.Verify
	}
	if s.Notify == nil {
		s.Notify = d.Notify
	}
	if s.Bootstrap == nil {
		s.Bootstrap = d.Bootstrap
	}
	if s.Reminders == nil {
		s.Reminders = d.Reminders
	}
	if s.Decommission == nil {
		s.Decommission = d.Decommission
	}
	return s
}

func (c *Config) validateAuth(errs *Errors) {
	for alias, id := range c.Auth.Identities {
		if strings.TrimSpace(alias) == "" || strings.TrimSpace(id) == "" {
			errs.Add("auth.identities", "empty name or identity in %q: %q", alias, id)
		}
	}
	o := c.Auth.OIDC
	if o == nil {
		return
	}
	if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs.Add("auth.oidc.issuer", "required: the provider's issuer URL (https://…)")
	}
	if o.Audience == "" {
		errs.Add("auth.oidc.audience", "required: the client id tokens are issued for")
	}
	if len(o.CLIScopes) > 0 && !slices.Contains(o.CLIScopes, "openid") {
		errs.Add("auth.oidc.cli_scopes", "must include openid: rekey login needs an ID token")
	}
	for i, g := range o.Groups {
		p := fmt.Sprintf("auth.oidc.groups[%d]", i)
		if g.Group == "" {
			errs.Add(p+".group", "required")
		}
		if _, err := auth.ParseRole(g.Role); err != nil {
			errs.Add(p+".role", "%v", err)
		}
		if g.Keys != "" {
			if err := auth.ValidPattern(g.Keys); err != nil {
				errs.Add(p+".keys", "%v", err)
			}
		}
	}
}
