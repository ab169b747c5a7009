package eventbridge_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/eventbridge"
)

// TestMain gives every test the environment of an emulator user: fixed
// test credentials and region, and no shared config files or metadata
// service to wander off to (tests never leave loopback).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spate-eventbridge-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                      "test",
		"AWS_SECRET_ACCESS_KEY":                  "test",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_REGION":                             "us-east-1",
		"AWS_DEFAULT_REGION":                     "us-east-1",
		"AWS_PROFILE":                            "",
		"AWS_CONFIG_FILE":                        filepath.Join(dir, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE":            filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
	} {
		os.Setenv(k, v)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	kumoOnce sync.Once
	kumoPath string
	kumoErr  error
)

// kumoBinary returns the kumo binary: $SPATE_KUMO, else one built from the
// repository's tools module into the user cache. It fails the test with
// instructions when neither works, or skips it if SPATE_SKIP_EVENTBRIDGE=1.
func kumoBinary(t testing.TB) string {
	t.Helper()
	kumoOnce.Do(func() {
		if p := os.Getenv(eventbridge.KumoEnv); p != "" {
			if _, err := os.Stat(p); err != nil {
				kumoErr = fmt.Errorf("%s=%s: %v", eventbridge.KumoEnv, p, err)
			}
			kumoPath = p
			return
		}
		out := eventbridge.CachedKumo() // where spate run finds it too
		if out == "" {
			out = filepath.Join(os.TempDir(), "spate", "kumo")
		}
		tools, err := filepath.Abs(filepath.Join("..", "..", "tools"))
		if err == nil {
			_, err = os.Stat(filepath.Join(tools, "go.mod"))
		}
		if err != nil {
			kumoErr = fmt.Errorf("the tools module: %v", err)
			return
		}
		// .ci/kumo.sh builds it (minutes the first time), or keeps the
		// binary make test's setup built when it is up to date.
		t.Logf("making the kumo emulator at %s with .ci/kumo.sh (set %s to skip)", out, eventbridge.KumoEnv)
		cmd := exec.Command(filepath.Join(tools, "..", ".ci", "kumo.sh"))
		cmd.Env = append(os.Environ(), "SPATE_KUMO_OUT="+out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if _, err := cmd.Output(); err != nil {
			kumoErr = fmt.Errorf(".ci/kumo.sh failed: %v\n%s", err, stderr.Bytes())
			return
		}
		kumoPath = out
	})
	if kumoErr != nil {
		if os.Getenv("SPATE_SKIP_EVENTBRIDGE") == "1" {
			t.Skipf("no kumo emulator (%v); SPATE_SKIP_EVENTBRIDGE=1", kumoErr)
		}
		t.Fatalf("the EventBridge tests need the kumo emulator: %v\n"+
			"Build it with .ci/kumo.sh and set %s to the path it prints, "+
			"or set SPATE_SKIP_EVENTBRIDGE=1 to skip these tests.", kumoErr, eventbridge.KumoEnv)
	}
	return kumoPath
}

// startKumo starts a private emulator for t and stops it when t ends.
func startKumo(t testing.TB) *eventbridge.Kumo {
	t.Helper()
	bin := kumoBinary(t)
	k, err := eventbridge.StartKumo(context.Background(), bin, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Error(err)
		}
	})
	return k
}

// loopbackDial is an Env.Dial that refuses anything but loopback and
// counts connections per side.
type loopbackDial struct {
	counts [3]atomic.Int64
}

func (l *loopbackDial) dial(ctx context.Context, side drivers.Side, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("test dialer: %s is not a loopback address", address)
	}
	l.counts[side].Add(1)
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

func testEnv(t testing.TB, producers, consumers int) drivers.Env {
	return drivers.Env{
		RunID:     uint64(time.Now().UnixNano()) | 1,
		Scenario:  t.Name(),
		Producers: producers,
		Consumers: consumers,
		Log:       testLogger(t),
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// kumoOptions are options for a provisioned run against k.
func kumoOptions(k *eventbridge.Kumo) eventbridge.Options {
	o := eventbridge.DefaultOptions()
	o.Endpoint = k.URL()
	o.Provision = true
	return o
}

// openDriver opens a driver with o for env, through a loopback-only dialer,
// and closes it when t ends.
func openDriver(t testing.TB, o eventbridge.Options, env drivers.Env) *eventbridge.Driver {
	t.Helper()
	if env.Dial == nil {
		env.Dial = (&loopbackDial{}).dial
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := eventbridge.New(ctx, o, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}
