package audit

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/internal/fsguard"
)

// openLogFile opens the log file at path (the current file or the spare)
// for reading and writing, or creates it when there is none (CREATE_NEW);
// created says which. A path that holds anything but a regular file is
// refused: an Lstat before the open, FILE_FLAG_OPEN_REPARSE_POINT (a
// symbolic link or junction is opened as itself, never followed) and a
// Stat of the handle after, as fsguard.OpenFile does.
//
// Unlike os.OpenFile with O_APPEND, which leaves out FILE_WRITE_DATA, the
// handle has GENERIC_WRITE: setting the allocation (allocate) and the end
// of file (a torn tail cut, a failed write undone) need FILE_WRITE_DATA
// (IopSetOperationAccess: FileAllocationInformation and
// FileEndOfFileInformation). Records are written at the end of file all
// the same, by appendTo. It shares delete, so that the spare can be
// renamed into place while it is open (its allocation is freed when its
// last handle closes); the handle is not inherited.
func openLogFile(path string) (f *os.File, created bool, err error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("open %s: is %s, %w", path, fsguard.Describe(fi.Mode()), errNotRegular)
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, false, &os.PathError{Op: "open", Path: path, Err: err}
	}
	const (
		access = windows.GENERIC_READ | windows.GENERIC_WRITE
		share  = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE
		attrs  = windows.FILE_ATTRIBUTE_NORMAL | windows.FILE_FLAG_OPEN_REPARSE_POINT
	)
	for range 3 {
		h, err := windows.CreateFile(p, access, share, nil, windows.OPEN_EXISTING, attrs, 0)
		created = false
		if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
			h, err = windows.CreateFile(p, access, share, nil, windows.CREATE_NEW, attrs, 0)
			if errors.Is(err, windows.ERROR_FILE_EXISTS) || errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
				continue // created by someone else meanwhile: open that one
			}
			created = true
		}
		if err != nil {
			return nil, false, &os.PathError{Op: "open", Path: path, Err: err}
		}
		f := os.NewFile(uintptr(h), path)
		if err := fsguard.CheckRegular(f, path); err != nil {
			f.Close()
			return nil, false, err
		}
		return f, created, nil
	}
	return nil, false, &os.PathError{Op: "open", Path: path, Err: windows.ERROR_FILE_EXISTS}
}

// appendTo writes b at the end of f with one WriteFile call whose offset
// is FILE_WRITE_TO_END_OF_FILE (Offset and OffsetHigh 0xFFFFFFFF: "write
// to the end of file", WriteFile on MSDN), as a FILE_APPEND_DATA handle
// would, whatever the handle's file pointer says.
func appendTo(f *os.File, b []byte) (int, error) {
	var done uint32
	err := withHandle(f, func(h windows.Handle) error {
		ol := windows.Overlapped{Offset: 0xFFFFFFFF, OffsetHigh: 0xFFFFFFFF}
		return windows.WriteFile(h, b, &done, &ol)
	})
	if err == nil && int(done) < len(b) {
		err = fmt.Errorf("short write: %d of %d bytes", done, len(b))
	}
	if err != nil {
		return int(done), fmt.Errorf("write at the end of file: %w", err)
	}
	return int(done), nil
}
