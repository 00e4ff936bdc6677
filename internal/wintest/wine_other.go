//go:build !windows

package wintest

func isWine() bool { return false }

func wineVersion() string { return "" }
