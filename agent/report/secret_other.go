//go:build !unix && !windows

package report

import (
	"fmt"
	"io/fs"
	"runtime"
)

// superuser is who the agent reads its secrets as.
const superuser = "the service's account"

// privateFix is the advice for making path private here.
func privateFix(path string) string {
	return "make " + path + " readable by the agent's account alone"
}

// checkSecret refuses every secret file here: who may read a file is not
// inspected on this system, and what cannot be judged is not taken as
// private.
func checkSecret(path string, _ fs.FileInfo) error {
	return fmt.Errorf("unsafe: %s: who may read it cannot be checked on %s; the agent reads tokens and keys only where it can", path, runtime.GOOS)
}
