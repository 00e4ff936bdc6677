package audit

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// fileStandardInfo is FILE_STANDARD_INFO (winbase.h), for
// GetFileInformationByHandleEx(FileStandardInfo).
type fileStandardInfo struct {
	AllocationSize int64
	EndOfFile      int64
	NumberOfLinks  uint32
	DeletePending  bool
	Directory      bool
}

// standardInfo returns f's allocation size and end of file, in bytes
// (GetFileInformationByHandleEx, FileStandardInfo).
func standardInfo(f *os.File) (fileStandardInfo, error) {
	var si fileStandardInfo
	err := withHandle(f, func(h windows.Handle) error {
		return windows.GetFileInformationByHandleEx(h, windows.FileStandardInfo,
			(*byte)(unsafe.Pointer(&si)), uint32(unsafe.Sizeof(si)))
	})
	if err != nil {
		return si, fmt.Errorf("query the allocation (FileStandardInfo): %w", err)
	}
	return si, nil
}

// allocate makes sure f has at least size bytes of disk space allocated,
// without changing its end of file: SetFileInformationByHandle with
// FILE_ALLOCATION_INFO (MS-FSCC 2.4.4 FileAllocationInformation), which
// needs FILE_WRITE_DATA on the handle (openLogFile opens with it). It
// never asks for less than the file has (that would free space, and below
// the end of file it would cut the file): the current allocation and end
// of file are read first (FileStandardInfo).
//
// NTFS frees allocation past the end of file when the last handle on the
// file is closed: the reserve lasts while the Log holds the file open, and
// Open makes it again. The error wraps errors.ErrUnsupported where the
// call is not implemented (Wine 8.0 answers ERROR_CALL_NOT_IMPLEMENTED; a
// file system may answer ERROR_INVALID_FUNCTION or ERROR_NOT_SUPPORTED),
// and ERROR_DISK_FULL when the space is not there (isNoSpace). The error
// does not name the file: callers do.
func allocate(f *os.File, size int64) error {
	if size <= 0 {
		return nil
	}
	si, err := standardInfo(f)
	if err != nil {
		return err
	}
	if si.AllocationSize >= size {
		return nil
	}
	want := max(size, si.EndOfFile)
	err = withHandle(f, func(h windows.Handle) error {
		return windows.SetFileInformationByHandle(h, windows.FileAllocationInfo, (*byte)(unsafe.Pointer(&want)), uint32(unsafe.Sizeof(want)))
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, windows.ERROR_CALL_NOT_IMPLEMENTED), errors.Is(err, windows.ERROR_INVALID_FUNCTION),
		errors.Is(err, windows.ERROR_NOT_SUPPORTED):
		return fmt.Errorf("set the allocation (FileAllocationInfo): %w: %w", errors.ErrUnsupported, err)
	}
	return fmt.Errorf("set the allocation to %d bytes (FileAllocationInfo): %w", want, err)
}

// isNoSpace says whether err is Windows' "disk full" (ERROR_DISK_FULL,
// ERROR_HANDLE_DISK_FULL) or "quota exceeded" (ERROR_DISK_QUOTA_EXCEEDED).
func isNoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL) ||
		errors.Is(err, windows.ERROR_DISK_QUOTA_EXCEEDED)
}

// withHandle runs fn with f's handle (through SyscallConn, so that f stays
// open meanwhile).
func withHandle(f *os.File, fn func(windows.Handle) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(windows.Handle(fd)) }); err != nil {
		return err
	}
	return ferr
}
