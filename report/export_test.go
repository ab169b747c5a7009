package report

import (
	"fmt"
	"strings"
	"testing"
)

// CheckInBrowser is the report's headless-browser check (browser_test.go)
// for tests outside the package: it loads page (a file path) in headless
// Chromium, fails t on any console error, uncaught exception or failed
// load, checks each chart id is laid out at least 500 px wide in a
// 1366 px window, and, with shot set, writes a full-page screenshot there.
// It skips like the report's own browser tests when no Chromium is
// installed (unless SPATE_REQUIRE_BROWSER is set).
func CheckInBrowser(t *testing.T, page string, charts []string, shot string) {
	t.Helper()
	ctx := browserContext(t)
	b := startBrowser(t, ctx)
	if problems := b.load(ctx, "file://"+page); len(problems) > 0 {
		t.Errorf("loading %s: %d problems:\n%s", page, len(problems), strings.Join(problems, "\n"))
	}
	for _, id := range charts {
		w := b.evaluate(ctx, fmt.Sprintf("(e => e ? e.getBoundingClientRect().width : -1)(document.getElementById(%q))", id))
		if f, ok := w.(float64); !ok || f < 500 {
			t.Errorf("chart %s is %v px wide in a 1366 px window", id, w)
		}
	}
	if shot != "" {
		b.screenshot(ctx, shot, 1366, 0)
	}
}

// ArtifactDir is artifactDir for tests outside the package.
func ArtifactDir(t *testing.T) string { return artifactDir(t) }
