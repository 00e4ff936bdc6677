// Package wintest holds test helpers for Windows binaries that also run
// under Wine 8.0 (scripts/wine/test.sh). IsWine tells whether the process
// runs under Wine (ntdll.dll exports wine_get_version there and nowhere
// else); TempDir is t.TempDir with a cleanup that works under Wine, whose
// missing FileDispositionInformationEx makes os.RemoveAll of a non-empty
// directory fail ("unlinkat ...: Invalid function"); RemoveAll is that
// cleanup. PrivateFile and OpenToEveryone make a file private (the 0600
// of a token file) or open to everyone, by mode on Unix and by DACL on
// Windows; on Windows SetDACL gives a file or folder the DACL of an SDDL
// string, and PrivateSDDL and EveryoneSDDL are the DACLs tests want most.
// Under Wine, MapDrive, MapImage and UnmapDrive define and remove drive
// letters through Wine's mount manager (what winecfg does), on letters
// the process has not used before (FreeLetter), and UnixPath gives the
// host path of a Windows path.
//
// It is for tests only: only _test.go files may import it (it imports
// testing and fails the tests it is given), which TestOnlyTestsImportIt
// holds the module to. The package builds on every system; off Windows
// IsWine is false and TempDir is t.TempDir.
package wintest
