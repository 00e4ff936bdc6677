# Windows tests under Wine (scripts/wine/, make wine-test): Debian 12 has
# Wine 8.0 only. wine64 holds the 64-bit loader (/usr/lib/wine/wine64) the
# wine command runs for our binaries; gcc-mingw-w64-x86-64-win32 builds
# the ProcessPrng shim DLL Go 1.26 binaries need under Wine 8.0.
have wine || need+=(wine)
[ -x /usr/lib/wine/wine64 ] || need+=(wine64)
have x86_64-w64-mingw32-gcc-win32 || need+=(gcc-mingw-w64-x86-64-win32)
