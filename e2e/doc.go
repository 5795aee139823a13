// Package e2e runs the real rekey binary: it builds it once, starts it as a
// separate process on a generated configuration, drives it through the CLI
// and the admin API, kills it with SIGKILL at every phase boundary, and scans
// everything the run produced for the secrets it minted.
package e2e
