package web

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestTextsInBothLanguages(t *testing.T) {
	for k := range texts[langJA] {
		if _, ok := texts[langEN][k]; !ok {
			t.Errorf("%q: no English text", k)
		}
	}
	for k := range texts[langEN] {
		if _, ok := texts[langJA][k]; !ok {
			t.Errorf("%q: no Japanese text", k)
		}
	}
	// Every key the templates name is in the table.
	re := regexp.MustCompile(`\.T "([a-z_]+)"`)
	entries, _ := os.ReadDir("templates")
	for _, e := range entries {
		data, _ := os.ReadFile("templates/" + e.Name())
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			if _, ok := texts[langJA][m[1]]; !ok {
				t.Errorf("%s: key %q not in the table", e.Name(), m[1])
			}
		}
	}
}

func TestShow(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                   "plain",
		"日本語のデバイス":                "日本語のデバイス",
		"invoice\u202Egpj.exe":    "invoice⟦U+202E⟧gpj.exe",
		"a\u2066b\u2069c\u200Fd":  "a⟦U+2066⟧b⟦U+2069⟧c⟦U+200F⟧d",
		"esc\x1b[31mred\x00\n":    "esc⟦U+001B⟧[31mred⟦U+0000⟧⟦U+000A⟧",
		"zero\u200Bwidth\uFEFF":   "zero⟦U+200B⟧width⟦U+FEFF⟧",
		"<script>markup</script>": "<script>markup</script>", // html/template escapes it
	} {
		if got := show(in); got != want {
			t.Errorf("show(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChart(t *testing.T) {
	since := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	days := make([]int64, 30)
	days[0], days[10], days[29] = 7, 1000, 1
	c := newChart(langEN, since, days)
	if len(c.Bars) != 30 {
		t.Fatalf("%d bars", len(c.Bars))
	}
	plot := c.Bottom - c.Top
	if b := c.Bars[10]; b.H != plot || b.Y != c.Top {
		t.Errorf("the highest bar %+v does not fill the plot (%d)", b, plot)
	}
	if b := c.Bars[29]; b.H < 2 || b.Title != "2026-04-01: 1" || b.Label != "Apr 1" {
		t.Errorf("the last bar %+v", b)
	}
	if b := c.Bars[1]; b.H != 0 || b.Label != "" {
		t.Errorf("an empty day %+v", b)
	}
	if got := []string{c.Ticks[0].Label, c.Ticks[1].Label, c.Ticks[2].Label}; strings.Join(got, ",") != "0,500,1000" {
		t.Errorf("ticks %v", got)
	}
	for i, b := range c.Bars {
		if b.X < c.Left || b.X+b.W > c.Right || b.W <= 0 {
			t.Errorf("bar %d out of the plot: %+v", i, b)
		}
	}
	for n, want := range map[int64]int64{0: 2, 1: 2, 2: 2, 3: 5, 7: 10, 11: 20, 1000: 1000, 1001: 2000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
	if c := newChart(langJA, since, make([]int64, 30)); c.Bars[29].Label != "4/1" {
		t.Errorf("Japanese label %q", c.Bars[29].Label)
	}
}

func TestDayIndex(t *testing.T) {
	// Across a change to summer time the days still count by the calendar.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	since := time.Date(2026, 3, 1, 0, 0, 0, 0, ny)
	for _, c := range []struct {
		t    time.Time
		want int
	}{
		{time.Date(2026, 3, 1, 23, 59, 0, 0, ny), 0},
		{time.Date(2026, 3, 8, 3, 0, 0, 0, ny), 7},
		{time.Date(2026, 3, 9, 0, 0, 0, 0, ny), 8},
		{time.Date(2026, 3, 30, 23, 0, 0, 0, ny), 29},
	} {
		if got := dayIndex(since, c.t); got != c.want {
			t.Errorf("dayIndex(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/violations?agent=pc-1": "/violations?agent=pc-1",
		"":                       "/",
		"https://evil.example":   "/",
		"//evil.example/x":       "/",
		"/\\evil.example":        "/",
		"/x\r\nSet-Cookie: a=b":  "/",
		"javascript:alert(1)":    "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
