package web

import (
	"strconv"
	"time"
)

// Geometry of the chart (SVG user units).
const (
	chartWidth  = 900
	chartHeight = 240
	chartLeft   = 44 // room for the y axis labels
	chartRight  = 8
	chartTop    = 12
	chartBottom = 28 // room for the day labels
)

// chart is a bar chart of violations per day, drawn as SVG on the server
// (no script): the template writes one rect per bar.
type chart struct {
	Width, Height int
	// Left, Top, Right and Bottom bound the plot area.
	Left, Top, Right, Bottom int
	Bars                     []bar
	Ticks                    []tick
}

// bar is one day.
type bar struct {
	X, Y, W, H int
	// Label is the day under the bar ("" for the days not labelled);
	// LabelX its centre. Title is the tooltip: date and count.
	Label  string
	LabelX int
	Title  string
	Count  int64
}

// tick is a horizontal grid line with its value.
type tick struct {
	Y     int
	Label string
}

// newChart lays out one bar per day from since.
func newChart(l lang, since time.Time, days []int64) chart {
	c := chart{Width: chartWidth, Height: chartHeight, Left: chartLeft, Top: chartTop,
		Right: chartWidth - chartRight, Bottom: chartHeight - chartBottom}
	var highest int64
	for _, n := range days {
		highest = max(highest, n)
	}
	top := niceCeil(highest)
	plotH := c.Bottom - c.Top
	for _, v := range []int64{0, top / 2, top} {
		if v == top/2 && top%2 != 0 {
			continue
		}
		c.Ticks = append(c.Ticks, tick{Y: c.Bottom - int(v*int64(plotH)/top), Label: strconv.FormatInt(v, 10)})
	}
	step := (c.Right - c.Left) / len(days)
	for i, n := range days {
		day := since.AddDate(0, 0, i)
		h := int(n * int64(plotH) / top)
		if n > 0 && h < 2 {
			h = 2 // a day with violations is never invisible
		}
		b := bar{X: c.Left + i*step + 2, W: step - 4, Y: c.Bottom - h, H: h, Count: n,
			LabelX: c.Left + i*step + step/2,
			Title:  day.Format(dateLayout) + ": " + strconv.FormatInt(n, 10)}
		if (len(days)-1-i)%5 == 0 { // today and every fifth day before
			b.Label = l.Date(day)
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

// niceCeil is the smallest of 1, 2, 5, 10, 20, 50, ... at or above n
// (at least 2, so that the middle grid line is a whole number).
func niceCeil(n int64) int64 {
	for m := int64(1); ; m *= 10 {
		for _, f := range []int64{2, 5, 10} {
			if f*m >= n {
				return f * m
			}
		}
	}
}
