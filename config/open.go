package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// openRegular opens path for reading without blocking (a named pipe with
// no writer does not hang the open) and returns it only when it is a
// regular file of at most limit bytes. what names the file in errors
// ("config", "ledger").
func openRegular(path, what string, limit int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("read %s %s: not a regular file (%s)", what, path, fileKind(fi.Mode()))
	}
	if fi.Size() > limit {
		f.Close()
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", limit)}}
	}
	return f, nil
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "mode " + m.String()
}

// readFile reads the regular file at path, at most limit bytes of it
// (reading limit+1 at most to tell that it is larger).
func readFile(path, what string, limit int64) ([]byte, error) {
	f, err := openRegular(path, what, limit)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	buf := make([]byte, 0, min(fi.Size(), limit)+1)
	data, err := readAll(io.LimitReader(f, limit+1), buf)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	if int64(len(data)) > limit {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", limit)}}
	}
	return data, nil
}

// readAll is io.ReadAll into buf, which is sized for the whole file.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
