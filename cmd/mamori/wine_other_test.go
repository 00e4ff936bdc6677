//go:build !windows

package main

// selfBinary is for Windows under Wine (wine_windows_test.go): here
// TestMain builds mamori with the Go toolchain.
func selfBinary(path string) bool { return false }

// asMamori is false here: the tests run mamori built by go build.
func asMamori() bool { return false }
