#!/bin/sh
# go test -exec wrapper for Windows test binaries under Wine: go test calls
# it as `exec.sh PKG.test.exe -test.flags...` in the package's directory,
# and its exit code is the test binary's. It runs only inside a prefix
# that scripts/wine/test.sh prepared (the shim, a running wineserver), and
# refuses otherwise: a binary started in the user's own ~/.wine would die
# without the shim, or change that prefix.
if [ -z "${MAMORI_WINE_PREFIX:-}" ] || [ "${WINEPREFIX:-}" != "$MAMORI_WINE_PREFIX" ]; then
  echo "scripts/wine/exec.sh: no prepared Wine prefix; run the tests through scripts/wine/test.sh" >&2
  exit 2
fi
exec wine "$@"
