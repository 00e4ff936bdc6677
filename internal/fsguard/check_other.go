//go:build !unix && !windows

package fsguard

import (
	"errors"
	"fmt"
	"runtime"
)

// errNoCheck is the error of every check here: this system's owners and
// permissions are not inspected, and what cannot be judged is refused
// (never taken as safe).
var errNoCheck = fmt.Errorf("owners and permissions are not inspected on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// CheckDir refuses every path here (errNoCheck).
func CheckDir(path string) error { return fmt.Errorf("check %s: %w", path, errNoCheck) }

// CheckFile refuses every path here (errNoCheck).
func CheckFile(path string) error { return fmt.Errorf("check %s: %w", path, errNoCheck) }

// CheckUnreadable refuses every path here (errNoCheck).
func CheckUnreadable(path string) error { return fmt.Errorf("check %s: %w", path, errNoCheck) }
