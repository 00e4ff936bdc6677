//go:build !libusb

package usb

import (
	"errors"
	"log/slog"
)

// NewLibusb would return an enumerator that reads devices through libusb;
// this build has no libusb support, so it always fails. Build with
// -tags libusb (cgo and libusb-1.0) to get it.
func NewLibusb(logger *slog.Logger) (Enumerator, error) {
	return nil, errors.New("mamori was built without libusb support (build with -tags libusb)")
}
