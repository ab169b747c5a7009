package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spate-dev/spate/kube"
)

// TestDockerfile checks what can be checked of the image without Docker
// (none runs here): the Dockerfile's stages, user and entrypoint are as
// the Kubernetes manifests assume, and its build command, run as it is
// written, makes a static binary (no interpreter, no dynamic section), so
// the run-time stage needs nothing but the binary and CA certificates.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	var froms, runs []string
	var user, entrypoint string
	copied := false
	for _, line := range strings.Split(df, "\n") {
		switch f := strings.Fields(line); {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		case f[0] == "FROM":
			froms = append(froms, strings.Join(f[1:], " "))
		case f[0] == "RUN":
			runs = append(runs, strings.TrimPrefix(line, "RUN "))
		case f[0] == "USER":
			user = f[1]
		case f[0] == "ENTRYPOINT":
			entrypoint = strings.Join(f[1:], " ")
		case f[0] == "COPY" && len(froms) > 1 && f[len(f)-1] == kube.Binary:
			copied = true
		}
	}
	gomod, _ := os.ReadFile("../../go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(string(gomod))
	if len(froms) != 2 || goVersion == nil || !strings.HasPrefix(froms[0], "golang:"+goVersion[1]+"-") || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("stages %q: want a golang:%v build stage, then the run-time stage", froms, goVersion)
	}
	if last := froms[len(froms)-1]; last != "scratch" && !strings.HasPrefix(last, "gcr.io/distroless/static") {
		t.Errorf("run-time stage %q: want scratch or distroless static", last)
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(user) || !strings.HasPrefix(user, "65532") {
		t.Errorf("USER %q: want the numeric non-root user %d the pods run as", user, kube.User)
	}
	if entrypoint != `["`+kube.Binary+`"]` || !copied {
		t.Errorf("ENTRYPOINT %s, binary copied to %s: %v; the Job's args assume %s", entrypoint, kube.Binary, copied, kube.Binary)
	}

	// The build command, as written, with the output moved here.
	var build string
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "-trimpath") || !strings.Contains(build, "-o /out/spate ./cmd/spate") {
		t.Fatalf("build command %q: want CGO_ENABLED=0 go build -trimpath ... -o /out/spate ./cmd/spate", build)
	}
	out := filepath.Join(t.TempDir(), "spate")
	build = strings.Replace(build, "-o /out/spate", "-o "+out, 1)
	cmd := exec.Command("sh", "-c", build)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "VERSION=test-image")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %s program header: it is not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
	info, err := exec.Command("go", "version", "-m", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath=true"} { // -ldflags are not recorded with -trimpath
		if !strings.Contains(string(info), want) {
			t.Errorf("go version -m lacks %q:\n%s", want, info)
		}
	}
	if v, err := exec.Command(out, "version").Output(); err != nil || !strings.Contains(string(v), "test-image") {
		t.Errorf("the built binary's version: %q %v", v, err)
	}
}
