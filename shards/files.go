package shards

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The report's HTTP paths on the coordinator's port: the list of files,
// each file under it, and a request that ends the serving early.
const (
	PathReport     = "/report"
	pathReportFile = "/report/files/"
	pathReportDone = "/report/done"
)

// ReportListing is what GET /report answers: the report directory's base
// name and every regular file under it, with its size.
type ReportListing struct {
	Dir   string       `json:"dir"`
	Files []ReportFile `json:"files"`
}

// ReportFile is one file of a listing; Path is slash-separated and
// relative to the report directory.
type ReportFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// ReportFiles serves a report directory read-only over HTTP, once it is
// published: GET /report lists its files, GET /report/files/PATH returns
// one, POST /report/done says the fetcher is finished (Done is closed).
// Before Publish every request is answered 503, "the run is not over".
// Hidden files (a name starting with ".", such as the run's lock) are not
// the report's and are not served. Nothing outside the directory is served: paths are resolved in an
// os.Root, which refuses .. and symbolic links that lead out. It is safe
// for concurrent use.
type ReportFiles struct {
	mu   sync.Mutex
	dir  string
	root *os.Root
	once sync.Once
	done chan struct{}
}

// NewReportFiles returns a handler with nothing published yet.
func NewReportFiles() *ReportFiles { return &ReportFiles{done: make(chan struct{})} }

// Publish serves dir from now on.
func (f *ReportFiles) Publish(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.root != nil {
		f.root.Close()
	}
	f.dir, f.root = dir, root
	return nil
}

// Close stops serving the directory.
func (f *ReportFiles) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.root != nil {
		f.root.Close()
		f.root = nil
	}
}

// Done is closed when a fetcher said it has the report (POST /report/done).
func (f *ReportFiles) Done() <-chan struct{} { return f.done }

func (f *ReportFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	dir, root := f.dir, f.root
	f.mu.Unlock()
	if r.URL.Path != PathReport && !strings.HasPrefix(r.URL.Path, pathReportFile) && r.URL.Path != pathReportDone {
		http.NotFound(w, r)
		return
	}
	if root == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: "the run is not over: its report is not written yet"})
		return
	}
	switch {
	case r.URL.Path == pathReportDone:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Error: "POST only"})
			return
		}
		f.once.Do(func() { close(f.done) })
		writeJSON(w, http.StatusOK, struct{}{})
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Error: "read-only"})
	case r.URL.Path == PathReport:
		list := ReportListing{Dir: filepath.Base(dir), Files: []ReportFile{}}
		err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != "." && hidden(p) {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil // directories are walked; links and devices are not served
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			list.Files = append(list.Files, ReportFile{Path: p, Size: info.Size()})
			return nil
		})
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, errorResponse{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, list)
	default:
		name := strings.TrimPrefix(r.URL.Path, pathReportFile)
		if !fs.ValidPath(name) || name == "." || hidden(name) {
			writeJSON(w, http.StatusBadRequest, errorResponse{Error: fmt.Sprintf("%q is not a path inside the report", name)})
			return
		}
		file, err := root.Open(name)
		if err != nil {
			writeJSON(w, http.StatusNotFound, errorResponse{Error: fmt.Sprintf("%s: no such file in the report", name)})
			return
		}
		defer file.Close()
		info, err := file.Stat()
		if err != nil || !info.Mode().IsRegular() {
			writeJSON(w, http.StatusNotFound, errorResponse{Error: fmt.Sprintf("%s: not a file of the report", name)})
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, path.Base(name), info.ModTime(), file)
	}
}

// hidden says whether a slash-separated path has a component starting
// with ".".
func hidden(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if strings.HasPrefix(c, ".") {
			return true
		}
	}
	return false
}

// FetchReport downloads the report that the coordinator at addr serves
// into dir (created; existing files are overwritten; "": the report
// directory's own name, in the current directory) and returns the
// directory and the files' paths, relative to it. Each file's size is checked against the
// listing. It waits, until ctx ends, while the run is not over yet or
// nothing answers (the coordinator is starting, or a port-forward is).
// With done, it then tells the coordinator it may stop serving.
func FetchReport(ctx context.Context, addr, dir string, done bool) (string, []string, error) {
	base := "http://" + addr
	hc := &http.Client{Timeout: 10 * time.Minute}
	var list ReportListing
	for {
		err := getJSON(ctx, hc, base+PathReport, &list)
		if err == nil {
			break
		}
		var r *refusal
		if errors.As(err, &r) && r.fatal {
			return "", nil, err
		}
		select {
		case <-ctx.Done():
			return "", nil, fmt.Errorf("fetching the report from %s: %w (last: %v)", addr, ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	if dir == "" {
		if !filepath.IsLocal(list.Dir) || strings.ContainsAny(list.Dir, `/\`) {
			return "", nil, fmt.Errorf("the coordinator named its report %q: give the directory to write to", list.Dir)
		}
		dir = list.Dir
	}
	var got []string
	for _, f := range list.Files {
		local := filepath.FromSlash(f.Path)
		if !fs.ValidPath(f.Path) || !filepath.IsLocal(local) {
			return dir, got, fmt.Errorf("the coordinator listed %q, which is not a path inside the report", f.Path)
		}
		if err := fetchFile(ctx, hc, base+pathReportFile+f.Path, filepath.Join(dir, local), f.Size); err != nil {
			return dir, got, fmt.Errorf("%s: %w", f.Path, err)
		}
		got = append(got, local)
	}
	if done {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+pathReportDone, nil)
		if err != nil {
			return dir, got, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return dir, got, fmt.Errorf("telling the coordinator the report is fetched: %w", err)
		}
		resp.Body.Close()
	}
	return dir, got, nil
}

// httpGet GETs url; the caller closes the body.
func httpGet(ctx context.Context, hc *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return hc.Do(req)
}

// getJSON GETs url into v; a non-200 answer is a refusal, fatal unless it
// is 503 (not yet).
func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	resp, err := httpGet(ctx, hc, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return &refusal{msg: e.Error, fatal: resp.StatusCode != http.StatusServiceUnavailable}
	}
	return json.Unmarshal(b, v)
}

// fetchFile downloads url into file, which must hold size bytes.
func fetchFile(ctx context.Context, hc *http.Client, url, file string, size int64) error {
	resp, err := httpGet(ctx, hc, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(resp.Body, size+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("got %d bytes, the listing said %d", n, size)
	}
	return nil
}
