package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The browser tests load report.html in headless Chromium, driven over the
// DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages ended
// by NUL on file descriptors 3 and 4), collect every console error,
// uncaught exception and browser log error (a failed load of any resource
// included), and take screenshots into the artifact directory. They skip
// when no Chromium is installed, unless SPATE_REQUIRE_BROWSER is set
// (.ci/browser.sh installs it and CI sets it).

// findChromium returns the browser to use: $SPATE_CHROMIUM, or the first of
// the usual names on PATH.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SPATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SPATE_REQUIRE_BROWSER") != "" {
		t.Fatal("SPATE_REQUIRE_BROWSER is set but no Chromium was found on PATH (run .ci/browser.sh, or set SPATE_CHROMIUM)")
	}
	t.Skip("headless Chromium not found on PATH (apt-get install chromium, or run .ci/browser.sh); " +
		"skipping the browser check; set SPATE_REQUIRE_BROWSER=1 to make this a failure")
	return ""
}

// browser is a headless Chromium with one page, driven over the DevTools
// protocol.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      io.WriteCloser // our end of Chromium's fd 3
	msgs    chan cdpMessage
	stderr  *bytes.Buffer
	nextID  int
	session string

	mu       sync.Mutex
	problems []string // console errors, exceptions, log errors
	events   []string // methods of events seen
}

type cdpMessage struct {
	ID        int             `json:"id"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	Result    json.RawMessage `json:"result"`
	Error     *struct{ Message string }
	SessionID string `json:"sessionId"`
}

func startBrowser(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	bin := findChromium(t)
	chromeIn, ourOut, err := os.Pipe() // Chromium reads commands from fd 3
	if err != nil {
		t.Fatal(err)
	}
	ourIn, chromeOut, err := os.Pipe() // and writes replies to fd 4
	if err != nil {
		t.Fatal(err)
	}
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir="+profile, "--remote-debugging-pipe", "about:blank")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.ExtraFiles = []*os.File{chromeIn, chromeOut}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	chromeIn.Close()
	chromeOut.Close()
	b := &browser{t: t, cmd: cmd, in: ourOut, msgs: make(chan cdpMessage, 256), stderr: &stderr}
	go b.read(ourIn)
	t.Cleanup(func() {
		_, _ = b.send("Browser.close", nil, false)
		ourOut.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		ourIn.Close()
	})

	var target struct{ TargetID string }
	b.call(ctx, "Target.createTarget", map[string]any{"url": "about:blank"}, &target, false)
	var attached struct{ SessionID string }
	b.call(ctx, "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached, false)
	b.session = attached.SessionID
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		b.call(ctx, m, nil, nil, true)
	}
	return b
}

// read splits Chromium's output into messages and records problems.
func (b *browser) read(r io.Reader) {
	defer close(b.msgs)
	br := bufio.NewReader(r)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		if m.Method != "" {
			b.event(m)
		}
		b.msgs <- m
	}
}

// event records console errors, uncaught exceptions and log errors.
func (b *browser) event(m cdpMessage) {
	var problem string
	switch m.Method {
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails struct {
				Text       string
				LineNumber int
				Exception  struct{ Description string }
			}
		}
		_ = json.Unmarshal(m.Params, &p)
		d := p.ExceptionDetails
		problem = fmt.Sprintf("uncaught exception (line %d): %s %s", d.LineNumber+1, d.Text, d.Exception.Description)
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string
			Args []struct {
				Value       any
				Description string
			}
		}
		_ = json.Unmarshal(m.Params, &p)
		if p.Type == "error" || p.Type == "assert" {
			var parts []string
			for _, a := range p.Args {
				if a.Value != nil {
					parts = append(parts, fmt.Sprint(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			problem = "console." + p.Type + ": " + strings.Join(parts, " ")
		}
	case "Log.entryAdded":
		var p struct {
			Entry struct{ Level, Source, Text, URL string }
		}
		_ = json.Unmarshal(m.Params, &p)
		if p.Entry.Level == "error" {
			problem = fmt.Sprintf("log error (%s): %s %s", p.Entry.Source, p.Entry.Text, p.Entry.URL)
		}
	}
	b.mu.Lock()
	b.events = append(b.events, m.Method)
	if problem != "" {
		b.problems = append(b.problems, problem)
	}
	b.mu.Unlock()
}

func (b *browser) send(method string, params any, inSession bool) (int, error) {
	b.nextID++
	msg := map[string]any{"id": b.nextID, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if inSession {
		msg["sessionId"] = b.session
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return 0, err
	}
	_, err = b.in.Write(append(raw, 0))
	return b.nextID, err
}

// call sends a command and waits for its reply, decoding the result into
// out (if not nil).
func (b *browser) call(ctx context.Context, method string, params, out any, inSession bool) {
	b.t.Helper()
	id, err := b.send(method, params, inSession)
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", method, err, b.stderr)
	}
	for {
		select {
		case m, ok := <-b.msgs:
			if !ok {
				b.t.Fatalf("%s: Chromium closed the pipe\n%s", method, b.stderr)
			}
			if m.Method != "" || m.ID != id {
				continue
			}
			if m.Error != nil {
				b.t.Fatalf("%s: %s", method, m.Error.Message)
			}
			if out != nil {
				if err := json.Unmarshal(m.Result, out); err != nil {
					b.t.Fatalf("%s: %v", method, err)
				}
			}
			return
		case <-ctx.Done():
			b.t.Fatalf("%s: %v\n%s", method, ctx.Err(), b.stderr)
		}
	}
}

// waitEvent waits for an event of the page's session.
func (b *browser) waitEvent(ctx context.Context, method string) {
	b.t.Helper()
	for {
		select {
		case m, ok := <-b.msgs:
			if !ok {
				b.t.Fatalf("waiting for %s: Chromium closed the pipe\n%s", method, b.stderr)
			}
			if m.Method == method {
				return
			}
		case <-ctx.Done():
			b.t.Fatalf("waiting for %s: %v", method, ctx.Err())
		}
	}
}

// load opens url, waits for its load event and a moment for late errors,
// and returns the problems seen while loading.
func (b *browser) load(ctx context.Context, url string) []string {
	b.t.Helper()
	b.mu.Lock()
	b.problems = nil
	b.mu.Unlock()
	var nav struct{ ErrorText string }
	b.call(ctx, "Page.navigate", map[string]any{"url": url}, &nav, true)
	if nav.ErrorText != "" {
		b.t.Fatalf("navigating to %s: %s", url, nav.ErrorText)
	}
	b.waitEvent(ctx, "Page.loadEventFired")
	// Let anything scheduled after load run, then read the page's errors:
	// an evaluation round trip orders after every event before it.
	var res struct{ Result struct{ Value any } }
	b.call(ctx, "Runtime.evaluate", map[string]any{"expression": "new Promise(r => setTimeout(() => r(document.readyState), 300))", "awaitPromise": true, "returnByValue": true}, &res, true)
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// screenshot sets the viewport to width × height (0: the page's full
// height) and writes a PNG of it to path.
func (b *browser) screenshot(ctx context.Context, path string, width, height int) {
	b.t.Helper()
	if height == 0 {
		// Measure at a small viewport: the content is at least as tall as it.
		b.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": 600, "deviceScaleFactor": 1, "mobile": false}, nil, true)
		var m struct {
			CSSContentSize struct{ Height float64 }
		}
		b.call(ctx, "Page.getLayoutMetrics", nil, &m, true)
		height = int(m.CSSContentSize.Height + 0.5)
	}
	b.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil, true)
	var shot struct{ Data string }
	b.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot, true)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		b.t.Fatal("the screenshot is not a PNG")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d×%d)", path, width, height)
}

// evaluate returns the value of a JavaScript expression in the page.
func (b *browser) evaluate(ctx context.Context, expr string) any {
	b.t.Helper()
	var res struct {
		Result struct{ Value any }
	}
	b.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res, true)
	return res.Result.Value
}

func browserContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestHTMLInBrowser loads the report of a run with a spike and faults in
// headless Chromium: no console error, every chart laid out with a size,
// and screenshots for people to look at (the laptop-sized first screen
// and the whole page).
func TestHTMLInBrowser(t *testing.T) {
	ctx := browserContext(t)
	b := startBrowser(t, ctx)
	dir := artifactDir(t)
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, []byte(renderHTML(t, chartResults(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	if problems := b.load(ctx, "file://"+page); len(problems) > 0 {
		t.Errorf("loading report.html: %d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	for _, id := range HTMLCharts {
		w := b.evaluate(ctx, fmt.Sprintf("(e => e ? e.getBoundingClientRect().width : -1)(document.getElementById(%q))", id))
		if f, ok := w.(float64); !ok || f < 500 {
			t.Errorf("chart %s is %v px wide in a 1366 px window", id, w)
		}
	}
	b.screenshot(ctx, filepath.Join(dir, "report-laptop.png"), 1366, 768)
	b.screenshot(ctx, filepath.Join(dir, "report-full.png"), 1366, 0)

	// A passing run without faults or thresholds, for the other header.
	pass := testResults(t)
	pass.Thresholds, pass.Verdict = nil, Pass
	passPage := filepath.Join(dir, "report-pass.html")
	if err := os.WriteFile(passPage, []byte(renderHTML(t, pass)), 0o644); err != nil {
		t.Fatal(err)
	}
	if problems := b.load(ctx, "file://"+passPage); len(problems) > 0 {
		t.Errorf("loading report-pass.html: %s", strings.Join(problems, "\n"))
	}
	b.screenshot(ctx, filepath.Join(dir, "report-pass.png"), 1366, 0)
}

// TestBrowserCatchesErrors proves the check above can fail: a page with a
// console error, an uncaught exception and a missing resource shows all
// three.
func TestBrowserCatchesErrors(t *testing.T) {
	ctx := browserContext(t)
	b := startBrowser(t, ctx)
	page := filepath.Join(t.TempDir(), "broken.html")
	src := strings.Replace(renderHTML(t, testResults(t)), "</body>",
		`<script>console.error("deliberate console error");</script>`+
			`<script>deliberatelyUndefinedFunction();</script>`+
			`<img src="missing-deliberately.png" alt="">`+"</body>", 1)
	if err := os.WriteFile(page, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(b.load(ctx, "file://"+page), "\n")
	for _, want := range []string{"deliberate console error", "deliberatelyUndefinedFunction", "missing-deliberately.png"} {
		if !strings.Contains(problems, want) {
			t.Errorf("the browser check missed %q; it saw:\n%s", want, problems)
		}
	}
	if t.Failed() {
		b.mu.Lock()
		t.Logf("events: %v", b.events)
		b.mu.Unlock()
	}
}
