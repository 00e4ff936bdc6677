// Package clockwatch tells when the system's wall clock is set: someone
// turned the PC's clock back or forward (date -s, an NTP step, the
// settings dialog). The agent records it as clock_changed and, once it
// knows the hub's time, judges approval dates by the hub-corrected clock,
// so that turning the clock back cannot revive an expired approval.
//
// On Linux it is a timerfd on CLOCK_REALTIME armed far in the future with
// TFD_TIMER_ABSTIME|TFD_TIMER_CANCEL_ON_SET: the kernel cancels it (read
// returns ECANCELED) whenever the clock is set discontinuously
// (timerfd_create(2)). Elsewhere New returns errors.ErrUnsupported and the
// caller compares the wall clock with the monotonic one instead.
package clockwatch
