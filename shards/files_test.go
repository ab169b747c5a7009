package shards

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReportFiles: nothing before Publish; then the directory's regular
// files, read-only, and nothing outside it, through .., an absolute path
// or a symbolic link, nor its hidden files (the run's lock).
func TestReportFiles(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("not in the report"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run-1")
	for name, body := range map[string]string{"results.json": `{"verdict":"pass"}`, "shards/1/shard.json": "{}", ".spate.lock": "pid", ".hidden/x": "x"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	f := NewReportFiles()
	srv := httptest.NewServer(f)
	defer srv.Close()

	if code, body := get(t, srv.URL+PathReport); code != http.StatusServiceUnavailable || !strings.Contains(body, "not over") {
		t.Errorf("before Publish: %d %s", code, body)
	}
	if err := f.Publish(dir); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	code, body := get(t, srv.URL+PathReport)
	var list ReportListing
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("list: %d %s", code, body)
	}
	if list.Dir != "run-1" || len(list.Files) != 2 || list.Files[0] != (ReportFile{"results.json", 18}) || list.Files[1] != (ReportFile{"shards/1/shard.json", 2}) {
		t.Errorf("listing %+v: want results.json and shards/1/shard.json, no link", list)
	}
	if code, body := get(t, srv.URL+"/report/files/results.json"); code != http.StatusOK || body != `{"verdict":"pass"}` {
		t.Errorf("results.json: %d %s", code, body)
	}
	for _, p := range []string{".spate.lock", ".hidden/x", "../secret.txt", "link.txt", "shards", "shards/../../secret.txt", "%2e%2e/secret.txt", "/" + outside, "nothing"} {
		code, body := get(t, srv.URL+"/report/files/"+p)
		if code == http.StatusOK || strings.Contains(body, "not in the report") {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	resp, err := http.Post(srv.URL+"/report/files/results.json", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to a file: %d", resp.StatusCode)
	}
	select {
	case <-f.Done():
		t.Fatal("done before anyone said so")
	default:
	}

	// FetchReport gets exactly the listed files, then says it is done.
	out := t.TempDir()
	got, files, err := FetchReport(context.Background(), strings.TrimPrefix(srv.URL, "http://"), out, true)
	if err != nil || got != out || len(files) != 2 {
		t.Fatalf("FetchReport: %s %v %v", got, files, err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "shards", "1", "shard.json")); string(b) != "{}" {
		t.Errorf("fetched shard.json: %q", b)
	}
	select {
	case <-f.Done():
	case <-time.After(5 * time.Second):
		t.Error("--done did not reach the server")
	}
}

// TestFetchReportRefusesEscapes: a listing that names a path outside the
// directory is refused before anything is written.
func TestFetchReportRefusesEscapes(t *testing.T) {
	for _, bad := range []string{"../x", "/etc/x", "a/../../x"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, ReportListing{Dir: "d", Files: []ReportFile{{Path: bad, Size: 1}}})
		}))
		out := filepath.Join(t.TempDir(), "out")
		_, _, err := FetchReport(context.Background(), strings.TrimPrefix(srv.URL, "http://"), out, false)
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), "not a path inside the report") {
			t.Errorf("%s: %v", bad, err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: something was written", bad)
		}
	}
}
