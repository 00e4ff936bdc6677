//go:build !windows

package audit

import "os"

// openLogFile opens the log file at path (the current file or the spare)
// for reading and appending, or creates it (mode 0600) when there is none;
// created says which. See openOrCreate: no symlink followed, no FIFO
// waited on, a regular file or an error.
func openLogFile(path string) (f *os.File, created bool, err error) {
	return openOrCreate(path, os.O_RDWR|os.O_APPEND)
}

// appendTo writes b at the end of f, opened by openLogFile (O_APPEND),
// with one write call.
func appendTo(f *os.File, b []byte) (int, error) { return f.Write(b) }
