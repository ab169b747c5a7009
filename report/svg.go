package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Chart is a line chart that renders itself as one self-contained inline
// SVG element: line series on linear or logarithmic axes, shaded and
// labelled windows (chaos faults), axis titles with units, tick labels, a
// legend, and a tooltip (<title>) on every series and, for short series,
// every point. It needs no script and no external resource. A Chart is a
// plain value; rendering does not change it.
type Chart struct {
	ID             string // the svg element's id (optional)
	Title          string
	XLabel, YLabel string // axis titles, with units: "time since start (s)"
	XLog, YLog     bool   // logarithmic axes (base 10)
	Width, Height  int    // the viewBox; default 960 × 320
	Series         []Series
	Windows        []Window
	// XTicks, when set, replaces the computed ticks of the x axis (the
	// percentile spectrum labels 1/(1-p) as percentiles).
	XTicks []Tick
	// XFormat and YFormat label ticks and tooltips; default: compactNumber.
	XFormat, YFormat func(float64) string
	// XDomain and YDomain fix an axis range; {0, 0} computes it from the
	// data (linear axes include 0; logarithmic ones span whole decades).
	XDomain, YDomain [2]float64
	// YFloor is the smallest value drawn on a logarithmic y axis; smaller
	// values (0 µs) are drawn at it. Default 1.
	YFloor float64
	// Empty is shown instead of the plot when no series has a point.
	Empty string
}

// Series is one line. A NaN Y leaves a gap.
type Series struct {
	Name   string
	Color  string // CSS color; default: the palette in order
	Dashed bool
	Width  float64 // stroke width; default 2 (wider under narrower lines keeps equal series visible)
	Points []Point
	// Markers draws every point as a visible dot (otherwise points show
	// only on hover); NoLine leaves out the line between them.
	Markers, NoLine bool
}

// Point is one (x, y) of a series.
type Point struct{ X, Y float64 }

// Window is a shaded span of the x axis with a label; one with To <= From
// is drawn as a vertical line (a point event).
type Window struct {
	From, To float64
	Label    string
}

// Tick is an axis tick at Value labelled Label.
type Tick struct {
	Value float64
	Label string
}

// Palette is the series colors in order (Okabe–Ito, readable by the
// colour-blind).
var Palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"}

// chart geometry: margins around the plot area.
const (
	marginLeft   = 78
	marginRight  = 24
	marginTop    = 58
	marginBottom = 52
)

// WriteSVG writes the chart as an <svg> element.
func (c Chart) WriteSVG(w io.Writer) error {
	_, err := io.WriteString(w, c.SVG())
	return err
}

// SVG returns the chart as an <svg> element.
func (c Chart) SVG() string {
	if c.Width == 0 {
		c.Width = 960
	}
	if c.Height == 0 {
		c.Height = 320
	}
	if c.XFormat == nil {
		c.XFormat = compactNumber
	}
	if c.YFormat == nil {
		c.YFormat = compactNumber
	}
	if c.YFloor <= 0 {
		c.YFloor = 1
	}
	var b strings.Builder
	id := ""
	if c.ID != "" {
		id = ` id="` + esc(c.ID) + `"`
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg"%s class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="12">`,
		id, c.Width, c.Height, esc(c.Title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(c.Title))
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="15" font-weight="600" fill="#222">%s</text>`, marginLeft, esc(c.Title))

	px0, px1 := float64(marginLeft), float64(c.Width-marginRight)
	legend := c.legendLayout(px0, px1)
	extra := 0.0
	if n := len(legend); n > 0 {
		extra = float64(legend[n-1].row) * legendRow // more legend rows push the plot down
	}
	py0, py1 := float64(c.Height-marginBottom), float64(marginTop)+extra // y grows downwards

	xs, ys := c.extent()
	if len(xs) == 0 {
		msg := c.Empty
		if msg == "" {
			msg = "no data"
		}
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="#fafafa" stroke="#ddd"/>`, f1(px0), f1(py1), f1(px1-px0), f1(py0-py1))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#666">%s</text>`, f1((px0+px1)/2), f1((py0+py1)/2), esc(msg))
		b.WriteString(`</svg>`)
		return b.String()
	}
	xa := newAxis(xs, c.XLog, c.XDomain, 1, false)
	ya := newAxis(ys, c.YLog, c.YDomain, c.YFloor, !c.YLog)
	sx := func(v float64) float64 { return px0 + xa.frac(v)*(px1-px0) }
	sy := func(v float64) float64 { return py0 - ya.frac(v)*(py0-py1) }

	// Plot area, grid and ticks.
	fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="#fff" stroke="#ccc"/>`, f1(px0), f1(py1), f1(px1-px0), f1(py0-py1))
	yticks := ya.ticks(c.YFormat)
	for _, t := range yticks {
		y := sy(t.Value)
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#eee"/>`, f1(px0), f1(px1), f1(y), f1(y))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end" fill="#444">%s</text>`, f1(px0-6), f1(y+4), esc(t.Label))
	}
	xticks := c.XTicks
	if xticks == nil {
		xticks = xa.ticks(c.XFormat)
	}
	for _, t := range xticks {
		if t.Value < xa.lo || t.Value > xa.hi {
			continue
		}
		x := sx(t.Value)
		anchor := "middle"
		if w := float64(len([]rune(t.Label))) * 3.5; x+w > float64(c.Width)-2 {
			anchor = "end" // keep the last label inside the chart
		}
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#eee"/>`, f1(x), f1(x), f1(py1), f1(py0))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="%s" fill="#444">%s</text>`, f1(x), f1(py0+16), anchor, esc(t.Label))
	}
	// Axis titles.
	fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle" fill="#222">%s</text>`, f1((px0+px1)/2), c.Height-12, esc(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %s) rotate(-90)" text-anchor="middle" fill="#222">%s</text>`, f1((py0+py1)/2), esc(c.YLabel))

	// Windows, under the series.
	rows := []float64{} // right end of the last label in each row
	for _, win := range c.Windows {
		from, to := math.Max(win.From, xa.lo), math.Min(win.To, xa.hi)
		if win.To > win.From && to <= from {
			continue
		}
		x0 := sx(from)
		labelW := float64(len([]rune(win.Label)))*6.2 + 6
		// The label starts at the window's left edge, or ends there when it
		// would run past the plot's right edge.
		lx, anchor := x0+3, "start"
		left := x0
		if x0+labelW > px1 {
			lx, anchor, left = x0-3, "end", x0-labelW
		}
		row := 0
		for row < len(rows) && rows[row] > left {
			row++
		}
		if row == len(rows) {
			rows = append(rows, 0)
		}
		rows[row] = left + labelW
		ly := py1 + 13 + float64(row)*14
		tip := win.Label + ": " + c.XFormat(win.From)
		if win.To > win.From {
			x1 := sx(to)
			tip += "–" + c.XFormat(win.To)
			fmt.Fprintf(&b, `<rect class="window" x="%s" y="%s" width="%s" height="%s" fill="#E69F00" fill-opacity="0.16" stroke="#E69F00" stroke-opacity="0.6"><title>%s</title></rect>`,
				f1(x0), f1(py1), f1(math.Max(x1-x0, 1)), f1(py0-py1), esc(tip))
		} else {
			fmt.Fprintf(&b, `<line class="window" x1="%s" x2="%s" y1="%s" y2="%s" stroke="#E69F00" stroke-width="2" stroke-dasharray="4 3"><title>%s</title></line>`,
				f1(x0), f1(x0), f1(py1), f1(py0), esc(tip))
		}
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="%s" fill="#8a5a00" font-size="11">%s</text>`, f1(lx), f1(ly), anchor, esc(win.Label))
	}

	// Series.
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = Palette[i%len(Palette)]
		}
		var d strings.Builder
		pen := false
		n := 0
		for _, p := range s.Points {
			if math.IsNaN(p.Y) || math.IsNaN(p.X) || math.IsInf(p.Y, 0) || (c.XLog && p.X <= 0) {
				pen = false
				continue
			}
			y := ya.clamp(p.Y)
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%s %s", cmd, f1(sx(p.X)), f1(sy(y)))
			pen = true
			n++
		}
		if n == 0 {
			continue
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		width := s.Width
		if width <= 0 {
			width = 2
		}
		if !s.NoLine {
			fmt.Fprintf(&b, `<path class="series" d="%s" fill="none" stroke="%s" stroke-width="%s"%s stroke-linejoin="round"><title>%s</title></path>`,
				d.String(), color, f1(width), dash, esc(s.Name))
		}
		if n == 1 || len(s.Points) <= 120 || s.Markers {
			for _, p := range s.Points {
				if math.IsNaN(p.Y) || math.IsNaN(p.X) || math.IsInf(p.Y, 0) || (c.XLog && p.X <= 0) {
					continue
				}
				class, r := "point", "3"
				if n > 1 {
					r = "2.5"
				}
				if s.Markers {
					class, r = "marker", "3.5"
					if s.NoLine {
						r = "5"
					}
				}
				fmt.Fprintf(&b, `<circle class="%s" cx="%s" cy="%s" r="%s" fill="%s"><title>%s %s: %s</title></circle>`,
					class, f1(sx(p.X)), f1(sy(ya.clamp(p.Y))), r, color, esc(s.Name), esc(c.XFormat(p.X)), esc(c.YFormat(p.Y)))
			}
		}
	}

	// Legend, right-aligned above the plot, in as many rows as it needs.
	for _, e := range legend {
		s := c.Series[e.series]
		color := s.Color
		if color == "" {
			color = Palette[e.series%len(Palette)]
		}
		y := 40 + float64(e.row)*legendRow
		if s.NoLine {
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="5" fill="%s"/>`, f1(e.x+9), f1(y), color)
		} else {
			dash := ""
			if s.Dashed {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-width="3"%s/>`, f1(e.x), f1(e.x+18), f1(y), f1(y), color, dash)
		}
		fmt.Fprintf(&b, `<text x="%s" y="%s" fill="#222">%s</text>`, f1(e.x+22), f1(y+4), esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// legendRow is the height of a row of the legend.
const legendRow = 16

// legendEntry places one series' legend entry.
type legendEntry struct {
	series int
	x      float64
	row    int
}

// legendLayout places the legend entries right-aligned from px1, the last
// series rightmost, starting a new row below when a row would pass px0.
func (c Chart) legendLayout(px0, px1 float64) []legendEntry {
	var out []legendEntry
	x, row := px1, 0
	for i := len(c.Series) - 1; i >= 0; i-- {
		w := float64(len([]rune(c.Series[i].Name)))*7 + 30
		if x-w < px0 && x < px1 {
			x, row = px1, row+1
		}
		x -= w
		out = append(out, legendEntry{series: i, x: x, row: row})
	}
	return out
}

// extent returns every drawable x and y.
func (c Chart) extent() (xs, ys []float64) {
	for _, s := range c.Series {
		for _, p := range s.Points {
			if math.IsNaN(p.Y) || math.IsNaN(p.X) || math.IsInf(p.Y, 0) || math.IsInf(p.X, 0) || (c.XLog && p.X <= 0) {
				continue
			}
			xs = append(xs, p.X)
			ys = append(ys, p.Y)
		}
	}
	if len(xs) > 0 {
		for _, w := range c.Windows {
			xs = append(xs, w.From, w.To)
		}
	}
	return xs, ys
}

// axis maps values to [0, 1].
type axis struct {
	log    bool
	lo, hi float64
	floor  float64
}

func newAxis(vs []float64, log bool, domain [2]float64, floor float64, withZero bool) axis {
	a := axis{log: log, floor: floor}
	if domain != [2]float64{} {
		a.lo, a.hi = domain[0], domain[1]
		return a
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if log {
			v = math.Max(v, floor)
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if log {
		a.lo = math.Pow(10, math.Floor(math.Log10(lo)))
		a.hi = math.Pow(10, math.Ceil(math.Log10(hi)))
		if a.hi <= a.lo {
			a.hi = a.lo * 10
		}
		return a
	}
	if withZero {
		lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	}
	if hi == lo {
		hi = lo + 1
	}
	if hi > 0 {
		hi += (hi - lo) * 0.04 // headroom: a peak does not touch the frame
	}
	step := niceStep(hi - lo)
	a.lo = math.Floor(lo/step) * step
	a.hi = math.Ceil(hi/step) * step
	return a
}

func (a axis) clamp(v float64) float64 {
	if a.log && v < a.floor {
		return a.floor
	}
	return v
}

func (a axis) frac(v float64) float64 {
	if a.log {
		v = math.Max(v, a.floor)
		return (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	}
	return (v - a.lo) / (a.hi - a.lo)
}

// ticks are 5 to 10 round values on a linear axis; powers of ten on a
// logarithmic one (with 2 and 5 between when it spans two decades or less).
func (a axis) ticks(format func(float64) string) []Tick {
	var out []Tick
	if a.log {
		decades := math.Log10(a.hi) - math.Log10(a.lo)
		for e := math.Floor(math.Log10(a.lo)); e <= math.Ceil(math.Log10(a.hi))+1e-9; e++ {
			for _, m := range []float64{1, 2, 5} {
				if m != 1 && decades > 2 {
					continue
				}
				v := m * math.Pow(10, e)
				if v >= a.lo*(1-1e-9) && v <= a.hi*(1+1e-9) {
					out = append(out, Tick{v, format(v)})
				}
			}
		}
		return out
	}
	step := niceStep(a.hi - a.lo)
	for v := math.Ceil(a.lo/step) * step; v <= a.hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		out = append(out, Tick{v, format(v)})
	}
	return out
}

// niceStep returns 1, 2 or 5 times a power of ten, giving 4 to 10 ticks
// over span.
func niceStep(span float64) float64 {
	if span <= 0 {
		return 1
	}
	rough := span / 6
	mag := math.Pow(10, math.Floor(math.Log10(rough)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= rough {
			return m * mag
		}
	}
	return 10 * mag
}

// compactNumber formats an axis value: 950, 1.5k, 2M, 0.25.
func compactNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimNum(v/1e9) + "G"
	case a >= 1e6:
		return trimNum(v/1e6) + "M"
	case a >= 1e3:
		return trimNum(v/1e3) + "k"
	}
	return trimNum(v)
}

// trimNum formats v with up to three significant digits and no trailing
// zeros.
func trimNum(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if math.Abs(v) >= 100 {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	} else if math.Abs(v) >= 10 {
		s = strconv.FormatFloat(v, 'f', 1, 64)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// tickMicros formats a latency in microseconds for an axis: 1µs, 250µs,
// 1ms, 2.5ms, 1s, 10s.
func tickMicros(us float64) string {
	switch a := math.Abs(us); {
	case a >= 1e6:
		return trimNum(us/1e6) + "s"
	case a >= 1e3:
		return trimNum(us/1e3) + "ms"
	}
	return trimNum(us) + "µs"
}

// tickSeconds formats seconds since the start for an axis: 0s, 30s, 1m30s.
func tickSeconds(s float64) string {
	if s >= 120 && math.Mod(s, 60) == 0 {
		return strconv.Itoa(int(s/60)) + "m"
	}
	if s >= 120 {
		return strconv.Itoa(int(s/60)) + "m" + trimNum(math.Mod(s, 60)) + "s"
	}
	return trimNum(s) + "s"
}

func esc(s string) string { return html.EscapeString(s) }

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
