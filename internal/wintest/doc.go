// Package wintest holds test helpers for Windows binaries that also run
// under Wine 8.0 (scripts/wine/test.sh). IsWine tells whether the process
// runs under Wine (ntdll.dll exports wine_get_version there and nowhere
// else); TempDir is t.TempDir with a cleanup that works under Wine, whose
// missing FileDispositionInformationEx makes os.RemoveAll of a non-empty
// directory fail ("unlinkat ...: Invalid function"); RemoveAll is that
// cleanup.
//
// It is for tests only. The package builds on every system; off Windows
// IsWine is false and TempDir is t.TempDir.
package wintest
