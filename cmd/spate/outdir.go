package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spate-dev/spate/report"
)

// Report directories. A run (or sweep) writes into one directory, which it
// holds for its whole length: the default one is made new for it
// (spate-results/NAME-TIME, with -2, -3, ... when that exists already, so
// two runs started within a second never share one); a directory given
// with --out or report.dir is locked (lockFile), so a second run into it
// fails at once naming the first, and it is refused when it holds files
// spate did not write, unless --overwrite.

// resultsRoot is where default report directories go.
const resultsRoot = "spate-results"

// lockName is the lock file a run holds in its report directory; it is
// removed when the run ends.
const lockName = ".spate.lock"

// sweepFiles are the files and directories a sweep writes beside reports.
var sweepFiles = []string{"sweep.csv", "sweep.json", "sweep.html", "points"}

// errDirInUse and errDirNotEmpty are usage errors (exit 2): the directory
// asked for cannot be this run's.
var (
	errDirInUse    = errors.New("in use by another spate run")
	errDirNotEmpty = errors.New("holds files spate did not write")
)

// dirNameRE matches what may not appear in a directory name made from a
// scenario's name: anything but letters, digits, dots, dashes and
// underscores (so no separators, no "..", no control characters).
var dirNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// maxDirName bounds the part of a default directory name made from the
// scenario's name (directory names are at most 255 bytes).
const maxDirName = 100

// dirName turns a scenario's name into a safe directory name: other
// characters become dashes, leading dots and dashes go, and it is cut to
// maxDirName bytes; "scenario" when nothing is left.
func dirName(name string) string {
	s := dirNameRE.ReplaceAllString(name, "-")
	s = strings.TrimLeft(s, ".-")
	if len(s) > maxDirName {
		s = s[:maxDirName]
	}
	s = strings.TrimRight(s, ".-")
	if s == "" {
		return "scenario"
	}
	return s
}

// outDir is a report directory held by this process until release.
type outDir struct {
	path string
	lock *lockFile
}

// release gives the directory up; safe to call more than once.
func (o *outDir) release() {
	if o != nil && o.lock != nil {
		o.lock.release()
		o.lock = nil
	}
}

// dirError is an error preparing a report directory, with the exit code
// it calls for.
func dirError(err error) *exitError {
	code := exitRuntime
	if errors.Is(err, errDirInUse) || errors.Is(err, errDirNotEmpty) {
		code = exitInvalid
	}
	return &exitError{code: code, err: err}
}

// openOutDir prepares the report directory of a run or sweep: dir when
// given, else a new directory under resultsRoot named after name and
// started. what says what holds the lock ("spate run FILE"), for the
// message another run gets. overwrite allows a directory holding other
// files.
func openOutDir(dir, name string, started time.Time, what string, overwrite bool) (*outDir, error) {
	if dir == "" {
		return newDefaultDir(name, started, what)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report directory: %w", err)
	}
	if !overwrite {
		if err := checkReportDir(dir); err != nil {
			return nil, err
		}
	}
	lock, err := acquireLock(dir, what)
	if err != nil {
		return nil, err
	}
	return &outDir{path: dir, lock: lock}, nil
}

// newDefaultDir makes resultsRoot/NAME-TIME, or NAME-TIME-2, -3, ... when
// it exists: os.Mkdir fails on an existing directory, so two processes
// never get the same one.
func newDefaultDir(name string, started time.Time, what string) (*outDir, error) {
	if err := os.MkdirAll(resultsRoot, 0o755); err != nil {
		return nil, fmt.Errorf("report directory: %w", err)
	}
	base := filepath.Join(resultsRoot, dirName(name)+"-"+started.Format("20060102-150405"))
	for i := 1; i <= 1000; i++ {
		dir := base
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("report directory: %w", err)
		}
		lock, err := acquireLock(dir, what)
		if err != nil {
			return nil, err
		}
		return &outDir{path: dir, lock: lock}, nil
	}
	return nil, fmt.Errorf("report directory: %s and 999 more like it exist already; give one with --out", base)
}

// checkReportDir refuses a directory holding anything spate does not write
// into report directories: a previous report (or sweep) may be written
// over, anything else (a home directory, /) is kept from harm.
func checkReportDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	known := append([]string{lockName}, sweepFiles...)
	for _, names := range report.FileNames {
		known = append(known, names...)
	}
	var foreign []string
	for _, e := range entries {
		if !slices.Contains(known, e.Name()) {
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	sort.Strings(foreign)
	shown := foreign
	if len(shown) > 3 {
		shown = append(shown[:3:3], fmt.Sprintf("and %d more", len(foreign)-3))
	}
	return fmt.Errorf("report directory %s %w (%s): it is not a previous spate report; give an empty or new directory, or --overwrite to write into it anyway",
		dir, errDirNotEmpty, strings.Join(shown, ", "))
}

// holderText describes this process for the lock file.
func holderText(what string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("pid %d on %s: %s, since %s", os.Getpid(), host, what, time.Now().Format(time.RFC3339))
}
