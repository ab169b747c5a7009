package eventbridge

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/spate-dev/spate/drivers"
)

// SetTransportWrapper makes every HTTP transport of drivers opened with o
// pass through wrap, so tests can fake answers (throttling) or watch
// requests.
func SetTransportWrapper(o *Options, wrap func(side drivers.Side, rt http.RoundTripper) http.RoundTripper) {
	o.wrapTransport = wrap
}

// Kumo is a kumo process for tests.
type Kumo struct{ k *kumoServer }

// StartKumo starts bin on a free loopback port, with its state in dataDir
// when not empty.
func StartKumo(ctx context.Context, bin, dataDir string) (*Kumo, error) {
	k, err := startKumo(ctx, bin, dataDir, nil)
	if err != nil {
		return nil, err
	}
	return &Kumo{k}, nil
}

// URL is the emulator's endpoint.
func (k *Kumo) URL() string { return k.k.URL() }

// Pid is the emulator's process id.
func (k *Kumo) Pid() int { return k.k.cmd.Process.Pid }

// Restart stops the emulator and starts it again on the same port.
func (k *Kumo) Restart(ctx context.Context, mode drivers.RestartMode, down time.Duration) error {
	return k.k.restart(ctx, mode, down)
}

// Close stops the emulator.
func (k *Kumo) Close() error { return k.k.close() }

// ManagedPid is the pid of the emulator a driver with endpoint: managed
// runs, or 0.
func ManagedPid(d *Driver) int {
	if d.kumo == nil {
		return 0
	}
	d.kumo.mu.Lock()
	defer d.kumo.mu.Unlock()
	return d.kumo.cmd.Process.Pid
}

// BodyReadOnly is the driver's HTTP client wrapper (bodyReadOnlyClient),
// for the bare benchmark clients and the test of the race it avoids.
func BodyReadOnly(c aws.HTTPClient) aws.HTTPClient { return bodyReadOnlyClient{c} }
