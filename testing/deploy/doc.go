// Package deploy holds the tests of rekey's deployment kit and documents:
// that docs/METRICS.md lists every metric the daemon defines, that the
// Grafana dashboard queries only those, that the systemd unit is hardened
// and valid, and that every YAML snippet in docs/ validates. The Helm
// chart's manifests are checked by tools/helm (its dependencies stay out of
// the main module); the alert rules by promtool (scripts/test.sh).
package deploy
