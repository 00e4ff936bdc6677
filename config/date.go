package config

import (
	"fmt"
	"strings"
	"time"
)

// Date is a civil date (a day in no particular time zone), as the
// valid_from and valid_until keys hold it.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses "YYYY-MM-DD", rejecting days that do not exist
// ("2026-02-30") and anything else (times, time zones, other layouts).
func ParseDate(s string) (Date, error) {
	if len(s) != len("2006-01-02") || s[4] != '-' || s[7] != '-' {
		return Date{}, fmt.Errorf("want a date YYYY-MM-DD, got %q", s)
	}
	for i := 0; i < len(s); i++ {
		if i != 4 && i != 7 && (s[i] < '0' || s[i] > '9') {
			return Date{}, fmt.Errorf("want a date YYYY-MM-DD, got %q", s)
		}
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("want a date YYYY-MM-DD, got %q", s)
	}
	return DateOf(t), nil
}

// parseLedgerDate parses a date cell of a ledger: "YYYY-MM-DD" as in the
// YAML, or "YYYY/M/D" with or without leading zeros, as Excel on a
// Japanese PC writes dates into CSV ("2026/4/1").
func parseLedgerDate(s string) (Date, error) {
	y, rest, ok1 := strings.Cut(s, "/")
	m, d, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || len(y) != 4 || len(m) < 1 || len(m) > 2 || len(d) < 1 || len(d) > 2 {
		if d, err := ParseDate(s); err == nil {
			return d, nil
		}
		return Date{}, fmt.Errorf("want a date YYYY-MM-DD or YYYY/M/D, got %q", s)
	}
	pad := func(v string) string {
		if len(v) == 1 {
			return "0" + v
		}
		return v
	}
	v, err := ParseDate(y + "-" + pad(m) + "-" + pad(d))
	if err != nil {
		return Date{}, fmt.Errorf("want a date YYYY-MM-DD or YYYY/M/D, got %q", s)
	}
	return v, nil
}

// DateOf returns the civil date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// String returns the date as "2026-04-01".
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Compare returns -1, 0 or +1 as d is before, the same day as, or after e.
func (d Date) Compare(e Date) int {
	a, b := d.ordinal(), e.ordinal()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ordinal maps d to an integer that orders like the date (YYYYMMDD).
func (d Date) ordinal() int64 {
	return int64(d.Year)*10000 + int64(d.Month)*100 + int64(d.Day)
}

// MarshalText returns String, so dates print as "2026-04-01" in JSON.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses "YYYY-MM-DD".
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
