//go:build !unix

package report

// checkSecret does nothing here yet (ACLs are not inspected on Windows,
// as in internal/fsguard).
func checkSecret(string) error { return nil }
