package eventbridge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spate-dev/spate/drivers"
)

// KumoEnv is the environment variable that names the kumo binary.
const KumoEnv = "SPATE_KUMO"

// Timeouts of the emulator's process.
const (
	kumoStartTimeout = 60 * time.Second
	kumoStopTimeout  = 35 * time.Second // kumo drains requests (long polls: up to 20s) for up to 30s
)

// FindKumo returns the path of the kumo binary: $SPATE_KUMO, else kumo on
// PATH, else the one .ci/kumo.sh and the tests build into the user cache
// (CachedKumo), else an error that says how to build it.
func FindKumo() (string, error) {
	if p := os.Getenv(KumoEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("eventbridge: %s=%s: %w; run .ci/kumo.sh to build the emulator and set %s to the path it prints", KumoEnv, p, err, KumoEnv)
		}
		return p, nil
	}
	if p, err := exec.LookPath("kumo"); err == nil {
		return p, nil
	}
	if p := CachedKumo(); p != "" {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("eventbridge: endpoint: managed needs the kumo emulator, and neither %s, PATH nor %s has it: "+
		"run .ci/kumo.sh (or make test), which builds kumo from the repository's tools module into %s, or set %s to a kumo binary",
		KumoEnv, CachedKumo(), CachedKumo(), KumoEnv)
}

// CachedKumo is where .ci/kumo.sh and the EventBridge tests build kumo:
// ${XDG_CACHE_HOME:-$HOME/.cache}/spate/kumo; "" when there is no user
// cache directory.
func CachedKumo() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "spate", "kumo")
}

// startManagedKumo starts kumo for endpoint: managed, with its state in a
// temporary directory so a restart keeps it.
func startManagedKumo(ctx context.Context, log *slog.Logger) (*kumoServer, error) {
	bin, err := FindKumo()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "spate-kumo-")
	if err != nil {
		return nil, fmt.Errorf("eventbridge: a directory for the emulator's state: %w", err)
	}
	k, err := startKumo(ctx, bin, dir, log)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	k.ownDir = true
	return k, nil
}

// kumoServer is a kumo process listening on a loopback port. Its methods
// are safe for concurrent use.
type kumoServer struct {
	bin, dataDir string
	ownDir       bool // remove dataDir at close
	log          *slog.Logger

	mu     sync.Mutex
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	out    *tailBuffer
	closed bool
}

// startKumo starts bin on a free loopback port (state persisted in dataDir
// when it is not empty) and returns once it answers.
func startKumo(ctx context.Context, bin, dataDir string, log *slog.Logger) (*kumoServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &kumoServer{bin: bin, dataDir: dataDir, log: log}
	var err error
	for range 3 { // another process may take the free port first
		if k.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = k.launch(ctx); err == nil {
			log.Info("kumo emulator started", "url", k.URL(), "pid", k.cmd.Process.Pid)
			return k, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("eventbridge: finding a free loopback port for the emulator: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL is the emulator's endpoint.
func (k *kumoServer) URL() string { return "http://127.0.0.1:" + strconv.Itoa(k.port) }

// launch starts the process on k.port and waits until /health answers.
// k.mu must be held or k not yet shared.
func (k *kumoServer) launch(ctx context.Context) error {
	cmd := exec.Command(k.bin)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUMO_") {
			env = append(env, kv)
		}
	}
	// KUMO_HOST keeps it on loopback (it binds every interface otherwise)
	// and fixes the address it delivers events to SQS through.
	env = append(env, "KUMO_HOST=127.0.0.1", "KUMO_PORT="+strconv.Itoa(k.port), "KUMO_LOG_LEVEL=error")
	if k.dataDir != "" {
		env = append(env, "KUMO_DATA_DIR="+k.dataDir)
	}
	cmd.Env = env
	k.out = &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = k.out, k.out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("eventbridge: starting the kumo emulator %s: %w", k.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	k.cmd, k.exited = cmd, exited

	ctx, cancel := context.WithTimeout(ctx, kumoStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	url := k.URL() + "/health"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("eventbridge: the kumo emulator exited while starting on port %d: %s", k.port, k.out.String())
		case <-ctx.Done():
			k.kill()
			return fmt.Errorf("eventbridge: the kumo emulator did not answer on %s within %v: %s", url, kumoStartTimeout, k.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop ends the process: SIGTERM and a wait (then SIGKILL) when graceful,
// SIGKILL at once otherwise. k.mu must be held.
func (k *kumoServer) stop(mode drivers.RestartMode) {
	if k.cmd == nil {
		return
	}
	select {
	case <-k.exited:
		return
	default:
	}
	if mode == drivers.Graceful {
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.exited:
			return
		case <-time.After(kumoStopTimeout):
			k.log.Warn("kumo emulator ignored SIGTERM; killing it", "pid", k.cmd.Process.Pid)
		}
	}
	k.kill()
}

func (k *kumoServer) kill() {
	_ = k.cmd.Process.Kill()
	<-k.exited
}

// restart stops the emulator, waits down, and starts it again on the same
// port, with the state it saved.
func (k *kumoServer) restart(ctx context.Context, mode drivers.RestartMode, down time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return ErrClosed
	}
	k.stop(mode)
	k.log.Info("kumo emulator stopped", "mode", modeName(mode), "down", down)
	if down > 0 {
		t := time.NewTimer(down)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	// Start it even when ctx ended: the run must not be left without it.
	if err := k.launch(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	k.log.Info("kumo emulator started again", "url", k.URL())
	return nil
}

// close stops the emulator for good and removes its state directory when
// it made it.
func (k *kumoServer) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	k.stop(drivers.Graceful)
	if k.ownDir {
		if err := os.RemoveAll(k.dataDir); err != nil {
			return fmt.Errorf("eventbridge: removing the emulator's state: %w", err)
		}
	}
	return nil
}

func modeName(m drivers.RestartMode) string {
	if m == drivers.Kill {
		return "kill"
	}
	return "graceful"
}

// tailBuffer keeps the last max bytes written to it, for error messages.
// It is safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(no output)"
	}
	return s
}
