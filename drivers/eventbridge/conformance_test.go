package eventbridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
	"github.com/spate-dev/spate/drivers/eventbridge"
)

// TestConformance runs the drivers' conformance suite against the kumo
// emulator: a standard queue promises no order.
func TestConformance(t *testing.T) {
	k := startKumo(t)
	drivertest.Run(t, drivertest.Config{
		Open: func(t *testing.T, env drivers.Env) drivers.Driver {
			env.Dial = (&loopbackDial{}).dial
			o := kumoOptions(k)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			d, err := eventbridge.Kind.Open(ctx, o, env)
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Unordered: true,
		Timeout:   60 * time.Second,
		Messages:  1000,
	})
}
