package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Chart colours: one per mode, plus ink.
var (
	modeColors = [numModes]color.RGBA{
		{0x9e, 0x9e, 0x9e, 0xff}, // ceiling: grey
		{0x1f, 0x77, 0xb4, 0xff}, // handler: blue
		{0xff, 0x7f, 0x0e, 0xff}, // bootstrap: orange
	}
	ink   = color.RGBA{0x22, 0x22, 0x22, 0xff}
	faint = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
)

// ChartPanel is one group of bars sharing a y axis.
type ChartPanel struct {
	Title  string
	Unit   string   // y axis unit, e.g. "records/s"
	Groups []string // x labels
	// Values[g][m] is the value of mode m in group g; NaN means not measured.
	Values [][numModes]float64
	// Labels[g][m], when set, is written above the bar (else its share of the ceiling's bar).
	Labels [][numModes]string
	// Note is written under the panel.
	Note string
}

// Chart draws panels side by side with a legend and writes a PNG.
func Chart(w io.Writer, title, subtitle string, panels []ChartPanel) error {
	for _, p := range panels {
		if len(p.Groups) == 0 || len(p.Values) != len(p.Groups) || (p.Labels != nil && len(p.Labels) != len(p.Groups)) {
			return fmt.Errorf("chart: panel %q: %d groups, %d values, %d labels", p.Title, len(p.Groups), len(p.Values), len(p.Labels))
		}
	}
	const (
		panelW, panelH = 330, 440
		top, left      = 96, 16
		plotTop        = 40 // within a panel
		plotBottom     = 60
		axisW          = 58
	)
	width := left*2 + panelW*len(panels)
	height := top + panelH + 40
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)

	text(img, left, 30, title, ink, 2)
	text(img, left, 54, subtitle, ink, 1)
	// Legend.
	lx := left
	for m := Mode(0); m < numModes; m++ {
		fill(img, image.Rect(lx, 66, lx+14, 80), modeColors[m])
		label := map[Mode]string{ModeCeiling: "ceiling: bare pulsar-client-go producer",
			ModeHandler: "handler in process", ModeBootstrap: "bootstrap under the Runtime API"}[m]
		text(img, lx+20, 78, label, ink, 1)
		lx += 40 + 7*len(label)
	}

	for i, p := range panels {
		x0 := left + i*panelW
		y0 := top
		text(img, x0+axisW, y0+16, p.Title, ink, 1)
		max := 0.0
		for _, g := range p.Values {
			for _, v := range g {
				if !math.IsNaN(v) && v > max {
					max = v
				}
			}
		}
		step, ticks := niceTicks(max)
		yMax := step * float64(ticks)
		plot := image.Rect(x0+axisW, y0+plotTop, x0+panelW-12, y0+panelH-plotBottom)
		for t := 0; t <= ticks; t++ {
			y := plot.Max.Y - int(float64(plot.Dy())*float64(t)/float64(ticks))
			fill(img, image.Rect(plot.Min.X, y, plot.Max.X, y+1), faint)
			l := short(step * float64(t))
			text(img, plot.Min.X-6-7*len(l), y+4, l, ink, 1)
		}
		text(img, x0+4, y0+plotTop-10, p.Unit, ink, 1)
		fill(img, image.Rect(plot.Min.X, plot.Min.Y, plot.Min.X+1, plot.Max.Y), ink)
		fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), ink)

		groupW := plot.Dx() / len(p.Groups)
		barW := (groupW - 16) / int(numModes)
		for g, name := range p.Groups {
			gx := plot.Min.X + g*groupW + 8
			text(img, gx+(groupW-16)/2-7*len(name)/2, plot.Max.Y+18, name, ink, 1)
			ceiling := p.Values[g][ModeCeiling]
			for m := Mode(0); m < numModes; m++ {
				v := p.Values[g][m]
				bx := gx + int(m)*barW
				if math.IsNaN(v) {
					text(img, bx+barW/2-10, plot.Max.Y-6, "n/a", ink, 1)
					continue
				}
				h := int(float64(plot.Dy()) * v / yMax)
				fill(img, image.Rect(bx+1, plot.Max.Y-h, bx+barW-1, plot.Max.Y), modeColors[m])
				label := ""
				if p.Labels != nil {
					label = p.Labels[g][m]
				} else if m != ModeCeiling && ceiling > 0 {
					label = fmt.Sprintf("%.0f%%", 100*v/ceiling)
				}
				text(img, bx+barW/2-7*len(label)/2, plot.Max.Y-h-4, label, ink, 1)
			}
		}
		text(img, plot.Min.X, plot.Max.Y+40, p.Note, ink, 1)
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("encode chart: %w", err)
	}
	return nil
}

// niceTicks returns a step of 1, 2 or 5 times a power of ten and the number of ticks that cover max.
func niceTicks(max float64) (step float64, ticks int) {
	if max <= 0 {
		return 1, 1
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, f := range []float64{1, 2, 5, 10} {
		if step = f * mag; step >= raw {
			break
		}
	}
	return step, int(math.Ceil(max / step))
}

// short renders an axis value: 150000 -> 150k.
func short(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	}
	return trimZero(fmt.Sprintf("%.1f", v))
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// text draws s with its baseline at y, scaled up by an integer factor (the bitmap font is 7x13).
func text(img *image.RGBA, x, y int, s string, c color.Color, scale int) {
	face := basicfont.Face7x13
	if scale <= 1 {
		d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
		d.DrawString(s)
		return
	}
	small := image.NewAlpha(image.Rect(0, 0, 7*len(s), 13))
	d := &font.Drawer{Dst: small, Src: image.Opaque, Face: face, Dot: fixed.P(0, 10)}
	d.DrawString(s)
	src := image.NewUniform(c)
	for sy := 0; sy < 13; sy++ {
		for sx := 0; sx < small.Rect.Dx(); sx++ {
			if a := small.AlphaAt(sx, sy).A; a > 0 {
				r := image.Rect(x+sx*scale, y-10*scale+sy*scale, x+(sx+1)*scale, y-10*scale+(sy+1)*scale)
				draw.DrawMask(img, r, src, image.Point{}, image.NewUniform(color.Alpha{A: a}), image.Point{}, draw.Over)
			}
		}
	}
}
