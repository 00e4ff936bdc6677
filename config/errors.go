package config

import "github.com/mamori-agent/mamori/internal/fileerr"

// Error is one problem in a config file, at a position in it: see
// fileerr.Error ("file:line:col: msg").
type Error = fileerr.Error

// ErrorList is every problem found in one config file, in file order.
// Parse and Load return it (never empty) when a file is invalid;
// errors.As(err, new(*Error)) finds the first problem.
type ErrorList = fileerr.ErrorList
